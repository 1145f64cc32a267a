"""Prometheus metrics, served at ``/metrics``.

Cheap on the hot path: nothing is counted per event. Runs are counted when they end, commits per
group-commit batch. What is running or queued, and the streams (opened, resumed, open, events
delivered), are read from the engine's own counts when scraped. No label carries a
response id: the cardinality of every metric is fixed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from outlast.observe.base import Observer, RunInfo


class StreamCounts(Protocol):
    """The engine's counts of its streams (:class:`outlast.engine.streams.StreamCounts`)."""

    opened: int
    resumed: int
    delivered: int

    @property
    def open_now(self) -> int: ...


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Runs last from seconds to hours.
DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2000)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class Metrics(Observer):
    """The Prometheus observer: its own registry, so that several apps can live in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.runs_created = Counter(
            "outlast_runs_created",
            "Responses created on this replica.",
            ["background"],
            registry=r,
        )
        self.runs_finished = Counter(
            "outlast_runs_finished",
            "Runs that reached a terminal state here, by that state (a run ended by crash "
            "recovery or by another replica's takeover counts where it was ended).",
            ["status"],
            registry=r,
        )
        self.run_duration = Histogram(
            "outlast_run_duration_seconds",
            "From creation to terminal state, by that state.",
            ["status"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.runs_resumed = Counter(
            "outlast_runs_resumed",
            "Runs interrupted (crash, lost lease, shutdown) and queued again to be resumed from "
            "their journal of steps, counted where the resume was decided.",
            registry=r,
        )
        self.batch_events = Histogram(
            "outlast_store_commit_batch_events",
            "Events per group-commit transaction.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.commit_seconds = Histogram(
            "outlast_store_commit_seconds",
            "Duration of each group-commit transaction.",
            buckets=COMMIT_BUCKETS,
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "outlast_webhook_deliveries",
            "Webhook delivery attempts, by result (delivered, failed: will be retried, "
            "gave_up: the retry period is over).",
            ["result"],
            registry=r,
        )
        for result in ("delivered", "failed", "gave_up"):
            self.webhook_deliveries.labels(result)
        for status in ("completed", "failed", "cancelled", "incomplete"):
            self.runs_finished.labels(status)

    def watch_engine(
        self,
        running: Callable[[], int],
        queued: Callable[[], int],
        written: Callable[[], int],
        streams: StreamCounts,
    ) -> None:
        """Figures read from the engine when scraped."""
        self.registry.register(_EngineCollector(running, queued, written, streams))

    # -- hooks ---------------------------------------------------------------------------------

    def run_created(self, run: RunInfo, local: bool) -> None:
        self.runs_created.labels("true" if run.background else "false").inc()

    def run_resumed(self, run: RunInfo) -> None:
        self.runs_resumed.inc()

    def run_ended(self, run: RunInfo, status: str, events: int, error: str | None) -> None:
        self.runs_finished.labels(status).inc()
        self.run_duration.labels(status).observe(max(0.0, time.time() - run.created_at))

    def commit(self, events: int, seconds: float) -> None:
        self.batch_events.observe(events)
        self.commit_seconds.observe(seconds)

    # -- webhooks ------------------------------------------------------------------------------

    def webhook_result(self, result: str) -> None:
        self.webhook_deliveries.labels(result).inc()

    # -- serving -------------------------------------------------------------------------------

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def endpoint(self, request: Request) -> Response:
        """``GET /metrics``: the Prometheus text format."""
        return Response(self.render(), media_type=CONTENT_TYPE)


class _EngineCollector(Collector):
    def __init__(
        self,
        running: Callable[[], int],
        queued: Callable[[], int],
        written: Callable[[], int],
        streams: StreamCounts,
    ) -> None:
        self.running = running
        self.queued = queued
        self.written = written
        self.streams = streams

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        runs = GaugeMetricFamily(
            "outlast_runs", "Runs on this replica now, by state.", labels=["state"]
        )
        queued = self.queued()
        runs.add_metric(["in_progress"], self.running())
        runs.add_metric(["queued"], queued)
        yield runs
        yield GaugeMetricFamily(
            "outlast_queue_depth", "Runs waiting for a slot on this replica.", value=queued
        )
        yield CounterMetricFamily(
            "outlast_events_written",
            "Events committed to the store by this replica.",
            value=self.written(),
        )
        streams = self.streams
        yield CounterMetricFamily(
            "outlast_events_delivered",
            "Events sent to clients on streams (SSE of both transports).",
            value=streams.delivered,
        )
        yield CounterMetricFamily(
            "outlast_streams_opened",
            "Streams opened (POST streams and GET streams).",
            value=streams.opened,
        )
        yield GaugeMetricFamily("outlast_streams_open", "Streams open now.", value=streams.open_now)
        yield CounterMetricFamily(
            "outlast_stream_resumes",
            "GET streams resumed with starting_after.",
            value=streams.resumed,
        )
