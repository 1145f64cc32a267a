"""A request body checked as JSON before a2a-sdk parses it: UTF-8, well formed, shallow.

The SDK parses bodies with the standard library and protobuf, which answer invalid UTF-8 with an
internal error (``-32603``, or a 500 on HTTP+JSON) and very deep nesting with the text of a
Python ``RecursionError``. Checked here first, both are a parse error in each binding's own
shape: ``-32700`` for JSON-RPC, ``400`` for HTTP+JSON, with a message of ours.
"""

from __future__ import annotations

from typing import Any

import orjson

MAX_DEPTH = 64
"""How deep arrays and objects may nest in a request. A2A's own objects need 6 or so; protobuf
refuses a ``Struct`` (a data part, metadata) nested past 100, which the walk below must beat."""


class BadJson(ValueError):
    """The body is not JSON an A2A request can be; the message says why, in one line."""


def _too_deep(value: Any) -> bool:
    # Iterative, so that no depth of nesting can exhaust the stack.
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list):
                if depth >= MAX_DEPTH:
                    return True
                pending.append((child, depth + 1))
    return False


def parse(body: bytes) -> Any:
    """The JSON value of ``body``; :class:`BadJson` if it is not UTF-8, not JSON, or nests more
    than :data:`MAX_DEPTH` levels."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise BadJson(
                f"The request body is not valid UTF-8 (byte {bad.start} is not)."
            ) from None
        if str(exc).startswith("depth limit exceeded"):
            raise BadJson(too_deep()) from None
        raise BadJson(f"The request body is not valid JSON: {exc}.") from None
    if isinstance(value, dict | list) and _too_deep(value):
        raise BadJson(too_deep())
    return value


def too_deep() -> str:
    return f"The request body nests arrays or objects more than {MAX_DEPTH} levels deep."
