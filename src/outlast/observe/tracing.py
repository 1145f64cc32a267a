"""OpenTelemetry traces (the ``otel`` extra), configured by the standard ``OTEL_*`` variables.

- One span per run (``outlast.run``), from the response's creation to its terminal state, with
  its response id, agent, model, status, event count and attempt. It is the root of its own trace
  and **linked** to the span of the request that created it (whose parent is the caller's W3C
  ``traceparent``), so a caller's trace leads to its background run. There is exactly one per run:
  a run re-queued or taken over elsewhere ends nowhere here (its span is dropped, never exported),
  and a run ended by crash recovery or by another replica gets its span where it is ended, from
  its creation time, marked ``outlast.recovered``.
- A child span per tool call (``tool <name>``), from the agent's ``FunctionCall`` to its
  ``FunctionCallOutput``.
- A server span per HTTP request, with the caller's ``traceparent`` as parent.

No span's context is ever attached in one task and detached in another: run and tool spans are
never made current (their parent is passed explicitly), and the server span is made current and
reset by the same coroutine, in the request's own task.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from outlast.observe.base import Observer, RunInfo
from outlast.protocol.outputs import FunctionCall, FunctionCallOutput

try:
    from opentelemetry import propagate, trace
    from opentelemetry.context import Context
    from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer
except ImportError:  # the otel extra is not installed
    trace = None  # type: ignore[assignment]

log = logging.getLogger("outlast.tracing")

RUN_SPAN = "outlast.run"
# Requests that would only add noise to traces.
UNTRACED_PATHS = frozenset({"/healthz", "/metrics"})
_ID_SEGMENT = re.compile(r"/(resp|msg|fc|call|task|ctx)_[A-Za-z0-9_-]+")


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def tracer_observer(agent: str = "") -> Tracing | None:
    """The tracing observer, if the ``otel`` extra is installed and tracing is configured: a
    tracer provider was set by the embedding program, or ``OTEL_*`` variables ask for export."""
    if trace is None or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        configured = _provider_from_env()
        if configured is None:
            return None
        trace.set_tracer_provider(configured)
        provider = trace.get_tracer_provider()
    return Tracing(provider.get_tracer("outlast"), agent)


def _provider_from_env() -> Any:
    """An SDK tracer provider exporting as ``OTEL_TRACES_EXPORTER`` (``otlp``, the default when an
    ``OTEL_EXPORTER_OTLP_*ENDPOINT`` is set, or ``console``) says; ``None``: not configured."""
    env = os.environ.get
    exporters = [e.strip() for e in env("OTEL_TRACES_EXPORTER", "").split(",") if e.strip()]
    if not exporters and (
        env("OTEL_EXPORTER_OTLP_ENDPOINT") or env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        exporters = ["otlp"]
    exporters = [e for e in exporters if e != "none"]
    if not exporters:
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError:
        log.warning(
            "OTEL_* asks for traces but opentelemetry-sdk is missing: pip install 'outlast[otel]'"
        )
        return None
    attributes = {} if env("OTEL_SERVICE_NAME") else {"service.name": "outlast"}
    # The sampler (OTEL_TRACES_SAMPLER) and batching (OTEL_BSP_*) are read from the environment.
    provider = TracerProvider(resource=Resource.create(attributes))
    for name in exporters:
        if name == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        elif name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            # Endpoint, headers, timeout, compression: OTEL_EXPORTER_OTLP_* variables.
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        else:
            log.warning("OTEL_TRACES_EXPORTER=%s is not supported (otlp, console)", name)
    return provider


class Tracing(Observer):
    """Run spans and tool-call spans; :meth:`middleware` adds server spans."""

    wants_outputs = True

    def __init__(self, tracer: Tracer, agent: str) -> None:
        self.tracer = tracer
        self.agent = agent
        self._runs: dict[str, Span] = {}
        self._tools: dict[str, dict[str, Span]] = {}

    def middleware(self) -> Middleware:
        return Middleware(ServerSpans, tracer=self.tracer)

    def _start(self, run: RunInfo, links: list[Link], recovered: bool = False) -> Span:
        attributes: dict[str, Any] = {
            "outlast.response_id": run.response_id,
            "outlast.agent": self.agent,
            "gen_ai.request.model": run.model,
            "outlast.background": run.background,
            "outlast.attempt": run.attempt,
            "outlast.resumes": run.resumes,
        }
        if recovered:
            attributes["outlast.recovered"] = True
        # A root of its own (empty parent context): a run outlives the request that created it.
        return self.tracer.start_span(
            RUN_SPAN,
            context=Context(),
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            links=links,
            start_time=_ns(run.created_at),
        )

    def run_created(self, run: RunInfo, local: bool) -> None:
        if not local:
            return  # the replica that claims it traces it
        # Called in the creating request's task: its server span is the current one.
        creator = trace.get_current_span().get_span_context()
        links = [Link(creator)] if creator.is_valid else []
        self._runs[run.response_id] = self._start(run, links)

    def run_claimed(self, run: RunInfo) -> None:
        if run.response_id not in self._runs:
            self._runs[run.response_id] = self._start(run, [])

    def run_started(self, run: RunInfo) -> None:
        span = self._runs.get(run.response_id)
        if span is not None:
            span.add_event("started", {"outlast.attempt": run.attempt})

    def agent_output(self, response_id: str, output: Any) -> None:
        if isinstance(output, FunctionCall):
            parent = self._runs.get(response_id)
            if parent is None:
                return
            span = self.tracer.start_span(
                f"tool {output.name}",
                context=trace.set_span_in_context(parent),
                kind=SpanKind.INTERNAL,
                attributes={
                    "gen_ai.tool.name": output.name,
                    "gen_ai.tool.call.id": output.call_id,
                },
            )
            self._tools.setdefault(response_id, {})[output.call_id] = span
        elif isinstance(output, FunctionCallOutput):
            calls = self._tools.get(response_id)
            ended = calls.pop(output.call_id, None) if calls else None
            if ended is not None:
                ended.end()

    def run_ended(self, run: RunInfo, status: str, events: int, error: str | None) -> None:
        span = self._runs.pop(run.response_id, None)
        if span is None:  # ended by crash recovery, or for a replica that died
            span = self._start(run, [], recovered=True)
        for call in self._tools.pop(run.response_id, {}).values():
            call.set_status(Status(StatusCode.ERROR, f"the run ended {status} first"))
            call.end()
        span.set_attribute("outlast.status", status)
        span.set_attribute("outlast.event_count", events)
        span.set_attribute("outlast.attempt", run.attempt)
        span.set_attribute("outlast.resumes", run.resumes)
        if status == "failed":
            span.set_status(Status(StatusCode.ERROR, error or "failed"))
        elif status == "completed":
            span.set_status(Status(StatusCode.OK))
        span.end()

    def run_released(self, response_id: str) -> None:
        # Not ended, so never exported: the replica (or attempt) that ends the run traces it.
        self._runs.pop(response_id, None)
        self._tools.pop(response_id, None)


class ServerSpans:
    """A server span per HTTP request, child of the caller's ``traceparent``.

    The span is made current and reset in this coroutine, which runs the whole request (a stream
    included) in the request's own task.
    """

    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNTRACED_PATHS:
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]
        route = _ID_SEGMENT.sub(lambda m: "/{" + m.group(1) + "_id}", scope["path"])
        with self.tracer.start_as_current_span(
            f"{method} {route}",
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.path": scope["path"],
                "http.route": route,
                "url.scheme": scope.get("scheme", "http"),
            },
        ) as span:

            async def send_traced(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self.app(scope, receive, send_traced)
