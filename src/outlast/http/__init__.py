"""The ASGI app: routes, SSE, errors, auth."""

from outlast.http.app import create_app

__all__ = ["create_app"]
