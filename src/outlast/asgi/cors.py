"""CORS for browser clients served from other origins (``--cors-origin``), off by default."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware


def cors_middleware(origins: list[str]) -> list[Middleware]:
    """Starlette's CORS middleware for ``origins`` (``["*"]``: any), or nothing when there are none.

    It answers a preflight (``OPTIONS`` with ``Access-Control-Request-Method``) itself, before the
    API key is checked: a browser sends no credentials with one. The API's key goes in the
    ``Authorization`` header, not a cookie, so credentials mode is not needed and stays off.
    """
    if not origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["authorization", "content-type", "x-request-id", "last-event-id"],
            # A page may read the id of an answer, to quote it in a bug report.
            expose_headers=["x-request-id"],
            max_age=600,
        )
    ]
