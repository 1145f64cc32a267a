"""OpenTelemetry traces, captured with the SDK's in-memory exporter.

The server runs in this process (``create_app`` on a real uvicorn, on a real loopback port and a
real database) so that the test's tracer provider receives its spans; the client is the ``openai``
SDK, sending a W3C ``traceparent`` where a test needs one. Spans do not depend on the store, so
SQLite is enough, except for the run ended by crash recovery (SQLite and PostgreSQL).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
from openai import OpenAI
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from databases import TestDatabase, only_on
from helpers import wait_ended
from outlast.config import Settings
from outlast.server import create_app
from serverproc import ServerProcess, free_port

EXPORTER = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
trace.set_tracer_provider(_provider)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


class InProcessServer:
    """``outlast serve`` as the CLI builds it, on uvicorn in a thread of this process."""

    def __init__(self, db: str, **settings: Any) -> None:
        self.port = free_port()
        settings.setdefault("agent", "scripted_agents:router")
        app = create_app(Settings(port=self.port, db=db, **settings))
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> InProcessServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            assert self.thread.is_alive(), "the server stopped"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def client(self, **kwargs: Any) -> OpenAI:
        return OpenAI(
            base_url=f"http://127.0.0.1:{self.port}/v1", api_key="k", max_retries=0, **kwargs
        )


@pytest.fixture
def spans(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], list[ReadableSpan]]]:
    EXPORTER.clear()
    caplog.set_level(logging.WARNING)
    yield lambda: list(EXPORTER.get_finished_spans())
    # Never a context attached in one task and detached in another.
    assert not [r for r in caplog.records if "detach" in r.getMessage().lower()]


def run_spans(finished: list[ReadableSpan], response_id: str) -> list[ReadableSpan]:
    return [
        s
        for s in finished
        if s.name == "outlast.run"
        and s.attributes
        and s.attributes.get("outlast.response_id") == response_id
    ]


def wait_run_span(spans: Callable[[], list[ReadableSpan]], response_id: str) -> ReadableSpan:
    deadline = time.monotonic() + 10
    while not run_spans(spans(), response_id):
        assert time.monotonic() < deadline, "no run span"
        time.sleep(0.02)
    [span] = run_spans(spans(), response_id)
    return span


@only_on("sqlite")
def test_a_completed_run_with_tools_and_a_traceparent(
    database: TestDatabase, spans: Callable[[], list[ReadableSpan]]
) -> None:
    with InProcessServer(database.url) as server, server.client() as client:
        response = client.responses.create(
            model="tools",
            input="weather?",
            background=True,
            extra_headers={"traceparent": TRACEPARENT},
        )
        assert wait_ended(client, response.id) == "completed"
        events = list(client.responses.retrieve(response.id, stream=True))
        run = wait_run_span(spans, response.id)
    finished = spans()
    attributes = dict(run.attributes or {})
    assert attributes["outlast.status"] == "completed"
    assert attributes["outlast.agent"] == "scripted_agents:router"
    assert attributes["gen_ai.request.model"] == "tools"
    assert attributes["outlast.attempt"] == 1
    assert attributes["outlast.event_count"] == len(events)
    assert run.status.status_code == StatusCode.OK
    assert run.parent is None, "a run is the root of its own trace"
    # Linked to the request that created it, whose parent is the caller's traceparent.
    [post] = [s for s in finished if s.name == "POST /v1/responses"]
    assert post.kind == SpanKind.SERVER
    assert post.context.trace_id == int(TRACE_ID, 16)
    assert post.parent is not None and post.parent.span_id == int(PARENT_ID, 16)
    assert post.attributes and post.attributes["http.response.status_code"] == 200
    assert [link.context.span_id for link in run.links] == [post.context.span_id]
    # The tool call is a child of the run.
    [tool] = [s for s in finished if s.name == "tool get_weather"]
    assert tool.parent is not None and tool.parent.span_id == run.context.span_id
    assert tool.context.trace_id == run.context.trace_id
    assert tool.attributes and tool.attributes["gen_ai.tool.name"] == "get_weather"
    assert run.start_time is not None and tool.start_time is not None
    assert run.start_time <= tool.start_time
    assert tool.end_time is not None and run.end_time is not None
    assert tool.end_time <= run.end_time


@only_on("sqlite")
def test_a_failed_run(database: TestDatabase, spans: Callable[[], list[ReadableSpan]]) -> None:
    with InProcessServer(database.url) as server, server.client() as client:
        response = client.responses.create(model="fail", input="it broke", background=True)
        assert wait_ended(client, response.id) == "failed"
        run = wait_run_span(spans, response.id)
    assert run.attributes and run.attributes["outlast.status"] == "failed"
    assert run.status.status_code == StatusCode.ERROR
    assert run.status.description == "it broke"


@only_on("sqlite")
def test_a_cancelled_run(database: TestDatabase, spans: Callable[[], list[ReadableSpan]]) -> None:
    with InProcessServer(database.url) as server, server.client() as client:
        response = client.responses.create(model="block", input="wait", background=True)
        deadline = time.monotonic() + 10
        while client.responses.retrieve(response.id).status != "in_progress":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert run_spans(spans(), response.id) == [], "the run span ends with the run"
        client.responses.cancel(response.id)
        assert wait_ended(client, response.id) == "cancelled"
        run = wait_run_span(spans, response.id)
    finished = spans()
    assert run.attributes and run.attributes["outlast.status"] == "cancelled"
    assert run.status.status_code != StatusCode.ERROR
    [cancel] = [s for s in finished if s.name == "POST /v1/responses/{resp_id}/cancel"]
    assert cancel.attributes and cancel.attributes["url.path"].endswith(f"{response.id}/cancel")


@only_on("sqlite")
def test_a_streamed_then_resumed_run(
    database: TestDatabase, spans: Callable[[], list[ReadableSpan]]
) -> None:
    with InProcessServer(database.url) as server, server.client() as client:
        stream = client.responses.create(
            model="count", input="n=40 delay=0.01", background=True, stream=True
        )
        seen = []
        for event in stream:
            seen.append(event)
            if len(seen) == 5:
                break
        stream.close()  # the connection drops mid-run
        response_id = seen[0].response.id  # type: ignore[union-attr]
        rest = list(client.responses.retrieve(response_id, stream=True, starting_after=4))
        assert rest[-1].type == "response.completed"
        run = wait_run_span(spans, response_id)
    finished = spans()
    assert run.attributes and run.attributes["outlast.event_count"] == len(seen) + len(rest)
    names = [s.name for s in finished if s.kind == SpanKind.SERVER]
    assert "POST /v1/responses" in names
    assert "GET /v1/responses/{resp_id}" in names
    assert len(run_spans(finished, response_id)) == 1


@only_on("sqlite")
def test_exactly_one_run_span_per_run(
    database: TestDatabase, spans: Callable[[], list[ReadableSpan]]
) -> None:
    with InProcessServer(database.url) as server, server.client() as client:
        ids = [
            client.responses.create(model="count", input="n=3", background=True).id
            for _ in range(5)
        ]
        ids.append(client.responses.create(model="count", input="n=3").id)  # foreground
        for rid in ids:
            assert wait_ended(client, rid) == "completed"
        for rid in ids:
            wait_run_span(spans, rid)
    finished = spans()
    for rid in ids:
        assert len(run_spans(finished, rid)) == 1


def test_a_run_failed_by_crash_recovery_gets_its_one_span(
    database: TestDatabase,
    make_server: Callable[..., ServerProcess],
    spans: Callable[[], list[ReadableSpan]],
) -> None:
    # A separate process runs it and is killed; this process ends it (SQLite: at start-up;
    # PostgreSQL: once the dead replica's lease has lapsed).
    victim = make_server(agent="scripted_agents:router", args=["--lease", "1"]).start()
    with victim.client() as client:
        response = client.responses.create(model="block", input="wait", background=True)
        deadline = time.monotonic() + 10
        while client.responses.retrieve(response.id).status != "in_progress":
            assert time.monotonic() < deadline
            time.sleep(0.02)
    victim.kill()
    with InProcessServer(database.url, lease_seconds=1.0) as server, server.client() as client:
        assert wait_ended(client, response.id) == "failed"
        run = wait_run_span(spans, response.id)
    assert run.attributes and run.attributes["outlast.recovered"] is True
    assert run.attributes["outlast.status"] == "failed"
    assert run.start_time is not None and run.end_time is not None
    assert run.start_time <= int(response.created_at * 1e9) + 10**9 <= run.end_time + 10**9
