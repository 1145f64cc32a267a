"""What a run is asked to do, in domain terms: the engine's input from every transport.

A transport turns its own request into a :class:`RunSpec`: the Responses API parses and validates
a JSON body (:mod:`outlast.http.request`), A2A builds one from a ``Message``. The engine never sees
JSON bodies or HTTP; it stores the spec, hands the agent its parts and builds the response object
from it (:func:`new_response_fields`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from outlast.protocol.ids import new_id

# OpenAI's limits on a response's metadata: at most 16 pairs, keys of at most 64 characters and
# string values of at most 512.
METADATA_MAX_PAIRS = 16
METADATA_MAX_KEY = 64
METADATA_MAX_VALUE = 512


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One run to create.

    ``input_items`` are Responses input items, each with an ``id`` and a ``status`` (see
    :func:`stamp_item`). ``options`` are the parameters echoed in the response object and passed
    to the agent (``tools``, ``temperature``, ``text``, …); ``extra`` are accepted parameters that
    are not response fields (``include``, ``stream_options``, …), passed to the agent only.
    """

    model: str
    input_items: list[dict[str, Any]]
    instructions: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    previous_response_id: str | None = None
    store: bool = True
    background: bool = False
    stream: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tools(self) -> Sequence[Mapping[str, Any]]:
        """The tools the client declared (``[]`` when none)."""
        tools: Sequence[Mapping[str, Any]] = self.options.get("tools") or []
        return tools


_ID_PREFIX = {"message": "msg", "function_call": "fc", "function_call_output": "fco",
              "reasoning": "rs"}  # fmt: skip


def stamp_item(item: dict[str, Any]) -> dict[str, Any]:
    """An input item with the ``id`` and ``status`` it is stored and listed with (set in place
    when missing)."""
    item.setdefault("id", new_id(_ID_PREFIX.get(str(item.get("type", "message")), "item")))
    item.setdefault("status", "completed")
    return item


def new_response_fields(response_id: str, spec: RunSpec, status: str) -> dict[str, Any]:
    """Every field of a new response object except ``output``."""
    fields: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "background": spec.background,
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": spec.instructions,
        "metadata": spec.metadata,
        "model": spec.model,
        "parallel_tool_calls": True,
        "previous_response_id": spec.previous_response_id,
        "store": spec.store,
        "temperature": None,
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "truncation": "disabled",
        "usage": None,
    }
    fields.update(spec.options)
    for name in ("tools", "metadata"):
        if fields[name] is None:
            fields[name] = [] if name == "tools" else {}
    if fields["tool_choice"] is None:
        fields["tool_choice"] = "auto"
    if fields["parallel_tool_calls"] is None:
        fields["parallel_tool_calls"] = True
    return fields
