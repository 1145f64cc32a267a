"""Validate a ``POST /v1/responses/compact`` body into the engine's
:class:`~outlast.protocol.compaction.CompactSpec`.

The accepted parameters are the installed SDK's ``ResponseCompactParams`` (what
``client.responses.compact()`` sends). outlast acts on ``model``, ``input``, ``instructions`` and
``previous_response_id``; the rest (``image``, ``prompt_cache_*``, ``service_tier``) are accepted
and handed to an agent's compaction hook, which may use them.
"""

from __future__ import annotations

import functools
from typing import Any

from outlast.http.errors import invalid
from outlast.http.input_items import input_items, json_type
from outlast.http.limits import DEFAULT_LIMITS, InputLimits, check_input
from outlast.protocol.compaction import CompactSpec

COMPACT_PARAMS = (
    "types/responses/response_compact_params.py",
    "ResponseCompactParams",
    "TypedDict",
)
_OWN = frozenset({"model", "input", "instructions", "previous_response_id"})


@functools.cache
def compact_params() -> frozenset[str]:
    """The installed SDK's compact parameters: from its source, else by importing it."""
    from outlast.http.request import _parsed_names

    names = _parsed_names(*COMPACT_PARAMS)
    if names is None:
        from openai.types.responses.response_compact_params import ResponseCompactParams

        names = frozenset(ResponseCompactParams.__annotations__)
    return names | _OWN


def _string(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid(
            f"Invalid type for '{name}': expected a string, but got {json_type(value)} instead.",
            param=name,
            code="invalid_type",
        )
    return value


def parse_compact(body: Any, limits: InputLimits = DEFAULT_LIMITS) -> CompactSpec:
    """Check a compact body; raise :class:`~outlast.http.errors.APIError` if it is bad
    (``limits``: how large its input may be, as for a create)."""
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.", code="invalid_type", param=None)
    known = compact_params()
    for name in body:
        if name not in known:
            raise invalid(f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")
    model = _string(body, "model")
    if model is None:
        raise invalid(
            "Missing required parameter: 'model'.", param="model", code="missing_required_parameter"
        )
    if not model:
        raise invalid("Invalid 'model': empty string.", param="model")
    previous = _string(body, "previous_response_id")
    check_input(body.get("input"), limits)
    items = input_items(body.get("input"))
    if not items and previous is None:
        raise invalid(
            "Nothing to compact: give 'input', 'previous_response_id', or both.", param="input"
        )
    return CompactSpec(
        model=model,
        input_items=items,
        instructions=_string(body, "instructions"),
        previous_response_id=previous,
        extra={name: value for name, value in body.items() if name not in _OWN},
    )
