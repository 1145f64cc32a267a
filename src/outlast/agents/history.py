"""The conversation an adapter hands its framework, read from :attr:`AgentRequest.input`.

``AgentRequest.input`` holds Responses input items as plain dicts: the earlier turns of a
``previous_response_id`` chain (their inputs and outputs) first, then the new input. Each adapter
builds its framework's history from the same few kinds of :class:`Item`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from outlast.agents.base import AgentRequest, message_text

Kind = Literal["message", "function_call", "function_call_output", "reasoning"]


@dataclass(frozen=True, slots=True)
class Item:
    """One item of the conversation, reduced to what frameworks take.

    ``message``: ``role`` (user, assistant, system or developer) and ``text``, with the original
    ``content`` (a string or a list of content parts) for frameworks that take parts.
    ``function_call``: ``call_id``, ``name``, ``arguments`` (JSON). ``function_call_output``:
    ``call_id`` and ``text``. ``reasoning``: the summary as ``text``.
    """

    kind: Kind
    role: str = ""
    text: str = ""
    call_id: str = ""
    name: str = ""
    arguments: str = "{}"
    content: Any = None


def conversation(request: AgentRequest, instructions: bool = True) -> list[Item]:
    """The conversation so far, oldest first; the request's ``instructions`` first as a system
    message when ``instructions`` is true."""
    items: list[Item] = []
    if instructions and request.instructions:
        items.append(Item("message", role="system", text=request.instructions))
    for raw in request.input:
        item = _item(raw)
        if item is not None:
            items.append(item)
    return items


def _item(raw: Mapping[str, Any]) -> Item | None:
    kind = raw.get("type", "message")
    if kind == "message":
        role = str(raw.get("role", "user"))
        return Item("message", role=role, text=message_text(raw), content=raw.get("content"))
    if kind == "function_call":
        return Item(
            "function_call",
            call_id=str(raw.get("call_id", "")),
            name=str(raw.get("name", "")),
            arguments=str(raw.get("arguments") or "{}"),
        )
    if kind == "function_call_output":
        return Item("function_call_output", call_id=str(raw.get("call_id", "")), text=_output(raw))
    if kind == "reasoning":
        summary = raw.get("summary") or []
        text = "\n\n".join(s.get("text", "") for s in summary if isinstance(s, Mapping))
        return Item("reasoning", text=text)
    return None  # item kinds no framework here takes (hosted tool calls, …) are left out


def _output(raw: Mapping[str, Any]) -> str:
    output = raw.get("output", "")
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "".join(p.get("text", "") for p in output if isinstance(p, Mapping))
    return json.dumps(output)


def parse_arguments(arguments: str) -> dict[str, Any]:
    """A function call's JSON arguments as a dict (``{}`` when they are not a JSON object)."""
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {"value": value}


def responses_input(items: list[Item]) -> list[dict[str, Any]]:
    """The items as Responses input items without the ids and statuses of outlast's output items.

    Output ids are outlast's, unknown to the model server, and reasoning items cannot be replayed
    without the provider's encrypted content, so both are left out.
    """
    result: list[dict[str, Any]] = []
    for item in items:
        if item.kind == "message":
            if item.role == "assistant" or not isinstance(item.content, list):
                result.append({"role": item.role, "content": item.text})
            else:
                result.append({"type": "message", "role": item.role, "content": item.content})
        elif item.kind == "function_call":
            result.append(
                {
                    "type": "function_call",
                    "call_id": item.call_id,
                    "name": item.name,
                    "arguments": item.arguments,
                }
            )
        elif item.kind == "function_call_output":
            result.append(
                {"type": "function_call_output", "call_id": item.call_id, "output": item.text}
            )
    return result


def chat_messages(items: list[Item]) -> list[dict[str, Any]]:
    """The items as Chat Completions messages: consecutive function calls become one assistant
    message's ``tool_calls`` (joined to the assistant text just before them), outputs become
    ``tool`` messages."""
    messages: list[dict[str, Any]] = []
    for item in items:
        if item.kind == "message":
            role = "system" if item.role == "developer" else item.role
            messages.append({"role": role, "content": item.text})
        elif item.kind == "function_call":
            call = {
                "id": item.call_id,
                "type": "function",
                "function": {"name": item.name, "arguments": item.arguments},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif item.kind == "function_call_output":
            messages.append({"role": "tool", "tool_call_id": item.call_id, "content": item.text})
    return messages
