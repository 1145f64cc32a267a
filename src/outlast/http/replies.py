"""JSON replies: a Python value serialised once, or JSON bytes that already exist."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


def json_response(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


def json_bytes(body: bytes, status: int = 200) -> Response:
    """Already-serialised JSON (a stored snapshot goes out without being parsed)."""
    return Response(body, status_code=status, media_type="application/json")
