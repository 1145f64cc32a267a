"""Observing runs: Prometheus metrics, OpenTelemetry traces and webhooks.

The engine calls one :class:`Observer` at a run's lifecycle points; :class:`Observers` fans those
calls out to the metrics, tracing and webhook parts that are enabled. Every hook is cheap and never
waits: none is called per event, only per run, per stream or per group commit.
"""

from __future__ import annotations

from outlast.observe.base import Observer, Observers, OutboxRow, RunInfo

__all__ = ["Observer", "Observers", "OutboxRow", "RunInfo"]
