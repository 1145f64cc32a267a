"""Server-sent events as the fake model writes them: one ``data:`` line (after an ``event:``
line when named) and a blank line."""

from __future__ import annotations

import json
from typing import Any


def frame(payload: dict[str, Any] | str, event: str | None = None) -> bytes:
    """One SSE frame of ``payload`` (JSON, or a string as it is, such as ``[DONE]``)."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()
