"""What a run is asked to do, in domain terms: the engine's input from every transport.

A transport turns its own request into a :class:`RunSpec`: the Responses API parses and validates
a JSON body (:mod:`outlast.http.request`), A2A builds one from a ``Message``. The engine never sees
JSON bodies or HTTP; it stores the spec, hands the agent its parts and builds the response object
from it (:func:`new_response_fields`).
"""

from __future__ import annotations

import copy
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
    if "id" not in item:  # (not setdefault: a fresh id costs a urandom call)
        item["id"] = new_id(_ID_PREFIX.get(str(item.get("type", "message")), "item"))
    item.setdefault("status", "completed")
    return item


# What OpenAI's response object reports for a parameter the client did not send (or sent as
# null): the Open Responses schema requires every one of these fields, so they are always there.
RESPONSE_DEFAULTS: dict[str, Any] = {
    "frequency_penalty": 0.0,
    "max_output_tokens": None,
    "max_tool_calls": None,
    "parallel_tool_calls": True,
    "presence_penalty": 0.0,
    "prompt_cache_key": None,
    "reasoning": {"effort": None, "summary": None},
    "safety_identifier": None,
    "service_tier": "default",
    "temperature": 1.0,
    "text": {"format": {"type": "text"}, "verbosity": "medium"},
    "tool_choice": "auto",
    "tools": [],
    "top_logprobs": 0,
    "top_p": 1.0,
    "truncation": "disabled",
    "user": None,
}


def new_response_fields(response_id: str, spec: RunSpec, status: str) -> dict[str, Any]:
    """Every field of a new response object except ``output``: what the client sent, completed
    with OpenAI's defaults (:data:`RESPONSE_DEFAULTS`), tools echoed in full."""
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
        "previous_response_id": spec.previous_response_id,
        "store": spec.store,
        "usage": None,
    }
    options = spec.options
    for name, default in RESPONSE_DEFAULTS.items():
        value = options.get(name)
        # The defaults are fresh copies: a response's fields are its own to change.
        fields[name] = copy.deepcopy(default) if value is None else value
    fields.update((k, v) for k, v in options.items() if k not in RESPONSE_DEFAULTS)
    if fields["service_tier"] == "auto":
        fields["service_tier"] = "default"  # the tier "auto" picks: OpenAI reports it so
    fields["text"] = _echoed_text(fields["text"])
    fields["reasoning"] = {**RESPONSE_DEFAULTS["reasoning"], **fields["reasoning"]}
    fields["tools"] = [echoed_tool(tool) for tool in fields["tools"]]
    return fields


def _echoed_text(text: Mapping[str, Any]) -> dict[str, Any]:
    """``text`` completed with OpenAI's defaults; a JSON schema format with its ``description``
    and ``strict`` (Open Responses requires both; OpenAI's default is not strict)."""
    echoed = {**RESPONSE_DEFAULTS["text"], **{k: v for k, v in text.items() if v is not None}}
    form = echoed["format"]
    if isinstance(form, Mapping) and form.get("type") == "json_schema":
        echoed["format"] = {"description": None, "strict": False,
                            **{k: v for k, v in form.items() if v is not None}}  # fmt: skip
    return echoed


def echoed_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """A tool as the response object echoes it: a function tool with every field (OpenAI's
    defaults: ``strict`` true, no description, no parameters), any other tool as sent."""
    if tool.get("type") != "function":
        return dict(tool)
    echoed = {"type": "function", "name": tool.get("name"), "description": None,
              "parameters": None, "strict": True}  # fmt: skip
    echoed.update((k, v) for k, v in tool.items() if v is not None)
    return echoed
