"""API keys: who is calling. A response belongs to the key that created it.

Keys are never stored: a response's owner is a digest of its key. Without configured keys the
server is open and every caller is the same (empty) owner.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from outlast.asgi.owner import OWNER_SCOPE_KEY, owner_of
from outlast.http.errors import APIError, error_response


class AuthMiddleware:
    """Checks ``Authorization: Bearer <key>`` on ``/v1/`` and records the caller's owner id."""

    def __init__(self, app: ASGIApp, keys: list[str]) -> None:
        self.app = app
        self.owners = {key.encode(): owner_of(key) for key in keys}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A WebSocket's key is checked at its upgrade, with the same keys and the same answer.
        if scope["type"] not in ("http", "websocket") or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        if not self.owners:
            scope[OWNER_SCOPE_KEY] = ""
            await self.app(scope, receive, send)
            return
        owner = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    owner = self.owners.get(token.strip())
                break
        if owner is None:
            response = error_response(
                APIError(
                    401,
                    "Incorrect API key provided. You can pass your API key in the "
                    "'Authorization: Bearer <key>' header.",
                    code="invalid_api_key",
                )
            )
            if scope["type"] == "websocket":
                await _deny_upgrade(scope, receive, send, response)
                return
            await response(scope, receive, send)
            return
        scope[OWNER_SCOPE_KEY] = owner
        await self.app(scope, receive, send)


async def _deny_upgrade(scope: Scope, receive: Receive, send: Send, response: Response) -> None:
    """Refuse a WebSocket upgrade with the HTTP answer itself (a 401 the client can read) where
    the server supports the denial-response extension, else by closing before accepting."""
    websocket = WebSocket(scope, receive, send)
    if "websocket.http.response" in scope.get("extensions", {}):
        await websocket.send_denial_response(response)
    else:
        await websocket.close(code=1008, reason="invalid_api_key")
