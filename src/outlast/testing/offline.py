"""The fake model unscripted: the deterministic answer ``outlast testmodel`` gives each request
(:func:`offline_turn`), for trying agents and their tool loops with no key and no network."""

from __future__ import annotations

from typing import Any

from outlast.testing.script import Text, ToolCall, Turn


def _example(schema: Any) -> Any:
    """A value of a JSON schema's type, the same every time."""
    kind = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if isinstance(schema, dict) and schema.get("enum"):
        return schema["enum"][0]
    return {"string": "example", "integer": 1, "number": 1, "boolean": True, "array": [],
            "object": {}}.get(kind or "", "example")  # fmt: skip


def _tool_arguments(parameters: Any) -> dict[str, Any]:
    if not isinstance(parameters, dict):
        return {}
    properties = parameters.get("properties") or {}
    required = parameters.get("required") or list(properties)
    return {name: _example(properties.get(name)) for name in required if name in properties}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text"))
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _words(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def offline_turn(path: str, body: dict[str, Any]) -> Turn:
    """The unscripted answer to a request: a call of its first function tool while it has no
    tool output, else ``You said: …`` (or ``The tool said: …`` right after a tool's output)."""
    if path == "/chat/completions":
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        tools = [t.get("function") or {} for t in body.get("tools") or [] if isinstance(t, dict)]
        last = messages[-1] if messages else {}
        answered = last.get("role") == "tool"
        tool_output = _text_of(last.get("content")) if answered else ""
        users = [m for m in messages if m.get("role") == "user"]
        user_text = _text_of(users[-1].get("content")) if users else ""
    else:
        given = body.get("input")
        items = [{"role": "user", "content": given}] if isinstance(given, str) else given or []
        items = [i for i in items if isinstance(i, dict)]
        tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
        tools = [t for t in tools if t.get("type") == "function"]
        outputs = [i for i in items if i.get("type") == "function_call_output"]
        answered = bool(outputs) and items.index(outputs[-1]) > max(
            (n for n, i in enumerate(items) if i.get("role") == "user"), default=-1
        )
        tool_output = str(outputs[-1].get("output")) if answered else ""
        users = [i for i in items if i.get("role") == "user"]
        user_text = _text_of(users[-1].get("content")) if users else ""
    named = [t for t in tools if isinstance(t.get("name"), str)]
    if named and not answered:
        tool = named[0]
        return [ToolCall(tool["name"], _tool_arguments(tool.get("parameters")),
                         call_id=f"call_{len(user_text):04d}")]  # fmt: skip
    if answered:
        return [Text(_words(f"The tool said: {tool_output}"))]
    return [Text(_words(f"You said: {user_text}"))]
