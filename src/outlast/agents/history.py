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
    ``content`` (a string or a list of content parts) for frameworks that take parts, and an
    assistant message's ``phase`` (``commentary`` or ``final_answer``) when it has one.
    ``function_call``: ``call_id``, ``name``, ``arguments`` (JSON). ``function_call_output``:
    ``call_id`` and ``text``, with the original ``content`` (a string, or content parts: text,
    images, files). ``reasoning``: the summary as ``text``.
    """

    kind: Kind
    role: str = ""
    text: str = ""
    call_id: str = ""
    name: str = ""
    arguments: str = "{}"
    content: Any = None
    phase: str | None = None


class UnsupportedInput(ValueError):
    """An input part the model's API cannot take: the run fails with this message rather than
    leave the part out without a word."""


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
        phase = raw.get("phase") if role == "assistant" else None
        return Item(
            "message",
            role=role,
            text=message_text(raw),
            content=raw.get("content"),
            phase=phase if isinstance(phase, str) else None,
        )
    if kind == "function_call":
        return Item(
            "function_call",
            call_id=str(raw.get("call_id", "")),
            name=str(raw.get("name", "")),
            arguments=str(raw.get("arguments") or "{}"),
        )
    if kind == "function_call_output":
        return Item(
            "function_call_output",
            call_id=str(raw.get("call_id", "")),
            text=_output(raw),
            content=raw.get("output"),
        )
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
            if item.role == "assistant":
                message: dict[str, Any] = {"role": "assistant", "content": item.text}
                if item.phase:
                    message["phase"] = item.phase  # the model needs it back on every turn
                result.append(message)
            elif not isinstance(item.content, list):
                result.append({"role": item.role, "content": item.text})
            else:
                # Parts as they are: text, images and files reach the model.
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
            # A tool's output may be content parts (an image it fetched, a file): kept as they are.
            output = item.content if isinstance(item.content, list) else item.text
            result.append(
                {"type": "function_call_output", "call_id": item.call_id, "output": output}
            )
    return result


def chat_messages(items: list[Item]) -> list[dict[str, Any]]:
    """The items as Chat Completions messages: consecutive function calls become one assistant
    message's ``tool_calls`` (joined to the assistant text just before them), outputs become
    ``tool`` messages. A user message's images and files become the API's ``image_url`` and
    ``file`` parts; a part it has no form for raises :class:`UnsupportedInput`. (It has no
    ``phase``: an assistant message's is not sent, since strict servers refuse unknown fields.)"""
    messages: list[dict[str, Any]] = []
    for item in items:
        if item.kind == "message":
            role = "system" if item.role == "developer" else item.role
            if role == "user" and _has_media(item.content):
                messages.append({"role": "user", "content": chat_parts(item.content)})
            else:
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
            if _has_media(item.content):
                raise UnsupportedInput(
                    f"The output of call {item.call_id} holds an image or a file, which a Chat "
                    "Completions tool message cannot carry (text only); use the Responses API "
                    "upstream (--upstream-api responses)."
                )
            messages.append({"role": "tool", "tool_call_id": item.call_id, "content": item.text})
    return messages


_MEDIA = frozenset({"input_image", "input_file", "input_audio"})


def _has_media(content: Any) -> bool:
    return isinstance(content, list) and any(
        isinstance(part, Mapping) and part.get("type") in _MEDIA for part in content
    )


def chat_parts(content: list[Any]) -> list[dict[str, Any]]:
    """Responses input content parts as Chat Completions content parts."""
    parts: list[dict[str, Any]] = []
    for part in content:
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "input_image":
            url = part.get("image_url")
            if not url:
                raise UnsupportedInput(
                    "Chat Completions takes an image as a URL or a data URL, not as a file_id; "
                    "send its image_url, or use the Responses API upstream (--upstream-api "
                    "responses)."
                )
            image: dict[str, Any] = {"url": url}
            if part.get("detail") in ("auto", "low", "high"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        elif kind == "input_file":
            if part.get("file_url") and not (part.get("file_data") or part.get("file_id")):
                raise UnsupportedInput(
                    "Chat Completions takes a file as file_data or a file_id, not as a "
                    "file_url; send its data, or use the Responses API upstream "
                    "(--upstream-api responses)."
                )
            file = {k: part[k] for k in ("file_data", "file_id", "filename") if part.get(k)}
            parts.append({"type": "file", "file": file})
        elif kind == "input_audio":
            audio = part.get("input_audio")
            if not isinstance(audio, Mapping):
                raise UnsupportedInput("An input_audio part needs its input_audio data.")
            parts.append({"type": "input_audio", "input_audio": dict(audio)})
    return parts
