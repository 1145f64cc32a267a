"""Build the observers that the settings ask for, and the routes they serve."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from starlette.middleware import Middleware
from starlette.routing import Route

from outlast.config import Settings
from outlast.observe.base import Observer, Observers
from outlast.observe.metrics import Metrics
from outlast.store.base import Store


@dataclass(slots=True)
class Observability:
    """The engine's observer and what the app mounts for it."""

    observer: Observers
    metrics: Metrics | None = None
    routes: list[Route] = field(default_factory=list)
    middleware: list[Middleware] = field(default_factory=list)


def build(settings: Settings, store: Store) -> Observability:
    """Metrics (unless ``--no-metrics``), webhooks (with ``--webhook``) and traces (with the
    ``otel`` extra installed and configured by ``OTEL_*`` variables, or a tracer provider set)."""
    parts: list[Observer] = []
    metrics = None
    routes: list[Route] = []
    if settings.observe.metrics:
        metrics = Metrics()
        parts.append(metrics)
        routes.append(Route("/metrics", metrics.endpoint, methods=["GET"]))
    if settings.observe.webhooks:
        from outlast.observe.webhooks import Webhooks

        parts.append(Webhooks(settings.observe, store, metrics))
    middleware: list[Middleware] = []
    if tracing_may_be_configured():
        from outlast.observe.tracing import tracer_observer

        tracing = tracer_observer(settings.agent)
        if tracing is not None:
            parts.append(tracing)
            middleware.append(tracing.middleware())
    return Observability(Observers(parts), metrics, routes, middleware)


def tracing_may_be_configured() -> bool:
    """Whether tracing can be on, without importing OpenTelemetry (a few MB) to find out.

    Only two things turn it on: ``OTEL_*`` variables (export settings, or
    ``OTEL_PYTHON_TRACER_PROVIDER``, which OpenTelemetry reads itself), or a tracer provider
    set by the program that embeds the server, which has then imported ``opentelemetry``.
    """
    return "opentelemetry" in sys.modules or any(name.startswith("OTEL_") for name in os.environ)
