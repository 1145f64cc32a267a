"""The console's routes: its page and assets (open, like any web page) and its API (keyed)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from outlast.console import api, pages


def console_routes() -> list[BaseRoute]:
    """``/`` (a redirect), ``/console`` and its files, and ``/v1/console/*``."""
    return [
        Route("/", pages.root, methods=["GET"]),
        Route("/console", pages.index, methods=["GET"]),
        Route("/console/", pages.index, methods=["GET"]),
        Route("/console/static/{name}", pages.asset, methods=["GET"]),
        Route("/v1/console/overview", api.overview, methods=["GET"]),
        Route("/v1/console/runs", api.runs, methods=["GET"]),
        Route("/v1/console/runs/{response_id}/steer", api.steer, methods=["POST"]),
    ]
