"""Validate a ``POST /v1/responses`` body into the engine's :class:`~outlast.protocol.spec.RunSpec`.

The set of accepted parameters is the installed ``openai`` SDK's ``ResponseCreateParams``, and
every parameter echoed back in the response object is checked against the SDK's ``Response``
field type, so whatever we accept also comes back valid. Errors follow OpenAI's wording.

The SDK's types cost a server about 25 MB and half a second to import, and most requests need
only their names: those are read from the SDK's source (:func:`sdk_field_names`), and the types
themselves are imported when a request first carries a parameter whose value they check.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from outlast.http.errors import invalid
from outlast.protocol.spec import (
    METADATA_MAX_KEY,
    METADATA_MAX_PAIRS,
    METADATA_MAX_VALUE,
    RunSpec,
    stamp_item,
)

if TYPE_CHECKING:
    from pydantic import TypeAdapter

CREATE_PARAMS = (
    "types/responses/response_create_params.py",
    "ResponseCreateParamsBase",
    "TypedDict",
)
RESPONSE_MODEL = ("types/responses/response.py", "Response", "BaseModel")


def _parsed_names(relative: str, name: str, base: str) -> frozenset[str] | None:
    """The annotated names of class ``name`` (a direct subclass of ``base`` only) in the
    installed SDK's module at ``relative``, read without importing it; ``None`` if the source is
    not shaped so (another layout, a compiled install), and the caller imports the SDK instead."""
    spec = importlib.util.find_spec("openai")
    if spec is None or not spec.submodule_search_locations:
        return None
    try:
        tree = ast.parse((Path(spec.submodule_search_locations[0]) / relative).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            if [ast.unparse(b) for b in node.bases] != [base]:
                return None
            names = set()
            for statement in node.body:
                if not isinstance(statement, ast.AnnAssign):
                    continue
                if not isinstance(statement.target, ast.Name):
                    return None
                if "ClassVar" in ast.unparse(statement.annotation):
                    continue  # not a field (pydantic and TypedDict agree on that)
                names.add(statement.target.id)
            return frozenset(names)
    return None


def sdk_field_names() -> tuple[frozenset[str], frozenset[str]]:
    """The installed SDK's create parameters (``ResponseCreateParamsBase``'s keys) and
    ``Response`` fields: from its source when it is laid out as expected, else by importing it
    (a unit test checks that both ways agree)."""
    params = _parsed_names(*CREATE_PARAMS)
    fields = _parsed_names(*RESPONSE_MODEL)
    if params is None or fields is None:
        return imported_field_names()
    return params, fields


def imported_field_names() -> tuple[frozenset[str], frozenset[str]]:
    """:func:`sdk_field_names`, by importing the SDK's types."""
    from openai.types.responses import Response
    from openai.types.responses.response_create_params import ResponseCreateParamsBase

    return frozenset(ResponseCreateParamsBase.__annotations__), frozenset(Response.model_fields)


_PARAMS, RESPONSE_FIELDS = sdk_field_names()
KNOWN_PARAMS = _PARAMS | {"stream"}

# Parameters outlast acts on itself; every other known parameter is echoed when ``Response`` has
# a field of that name, and otherwise accepted and ignored (e.g. ``include``, ``stream_options``).
_OWN = frozenset(
    {"model", "input", "instructions", "metadata", "previous_response_id", "store",
     "background", "stream", "conversation"}
)  # fmt: skip


_TYPE_NAMES = {
    str: "a string", bool: "a boolean", int: "an integer", float: "a number",
    list: "an array", dict: "an object", type(None): "null",
}  # fmt: skip


def _json_type(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _wrong_type(name: str, expected: str, value: Any) -> Exception:
    return invalid(
        f"Invalid type for '{name}': expected {expected}, but got {_json_type(value)} instead.",
        param=name,
        code="invalid_type",
    )


@functools.cache
def _field_adapter(name: str) -> TypeAdapter[Any]:
    # The first request that echoes a checked parameter imports the SDK's types (once).
    from openai.types.responses import Response
    from pydantic import TypeAdapter

    annotation: Any = Response.model_fields[name].annotation
    return TypeAdapter(annotation)


def _valid_field(name: str, value: Any) -> bool:
    from pydantic import ValidationError

    try:
        _field_adapter(name).validate_python(value)
    except ValidationError:
        return False
    return True


def _optional(body: dict[str, Any], name: str, kind: type, expected: str) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise _wrong_type(name, expected, value)
    return value


def parse_create(body: Any) -> RunSpec:
    """Check a create body; raise :class:`~outlast.protocol.errors.APIError` if it is bad."""
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.", code="invalid_type", param=None)
    for name in body:
        if name not in KNOWN_PARAMS:
            raise invalid(f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")

    model = body.get("model")
    if model is None:
        raise invalid(
            "Missing required parameter: 'model'.", param="model", code="missing_required_parameter"
        )
    if not isinstance(model, str):
        raise _wrong_type("model", "a string", model)
    if not model:
        raise invalid("Invalid 'model': empty string.", param="model")

    store = _optional(body, "store", bool, "a boolean")
    background = bool(_optional(body, "background", bool, "a boolean"))
    stream = bool(_optional(body, "stream", bool, "a boolean"))
    store = True if store is None else store
    if background and not store:
        raise invalid(
            "Background mode requires 'store' to be true.", param="store", code="invalid_value"
        )
    instructions = _optional(body, "instructions", str, "a string")
    previous = _optional(body, "previous_response_id", str, "a string")
    if previous is not None and body.get("conversation") is not None:
        raise invalid(
            "Mutually exclusive parameters: 'previous_response_id' and 'conversation'. "
            "Ensure you are only providing one of: 'previous_response_id' or 'conversation'.",
            param="conversation",
            code="mutually_exclusive_parameters",
        )
    metadata = _metadata(body.get("metadata"))
    items = input_items(body.get("input"))

    echo: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, value in body.items():
        if name in _OWN:
            continue
        if name in ("temperature", "top_p"):
            _optional(body, name, float, "a number")
        elif name in ("max_output_tokens", "max_tool_calls", "top_logprobs"):
            _optional(body, name, int, "an integer")
        elif name in ("parallel_tool_calls",):
            _optional(body, name, bool, "a boolean")
        if name in RESPONSE_FIELDS:
            if value is not None and not _valid_field(name, value):
                raise invalid(f"Invalid value for '{name}'.", param=name)
            echo[name] = value
        else:
            extra[name] = value
    return RunSpec(
        model=model,
        input_items=items,
        instructions=instructions,
        metadata=metadata,
        previous_response_id=previous,
        store=store,
        background=background,
        stream=stream,
        options=echo,
        extra=extra,
    )


def _metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _wrong_type("metadata", "an object", value)
    if len(value) > METADATA_MAX_PAIRS:
        raise invalid(
            f"Invalid 'metadata': too many properties. Expected at most {METADATA_MAX_PAIRS} "
            f"properties, but got {len(value)} instead.",
            param="metadata",
        )
    for key, item in value.items():
        if len(key) > METADATA_MAX_KEY:
            raise invalid(
                f"Invalid 'metadata': key '{key[:20]}…' is longer than {METADATA_MAX_KEY} "
                "characters.",
                param="metadata",
            )
        if not isinstance(item, str):
            raise invalid(
                f"Invalid type for 'metadata.{key}': expected a string, but got "
                f"{_json_type(item)} instead.",
                param="metadata",
                code="invalid_type",
            )
        if len(item) > METADATA_MAX_VALUE:
            raise invalid(
                f"Invalid 'metadata.{key}': string too long. Expected a string with maximum "
                f"length {METADATA_MAX_VALUE}, but got a string with length {len(item)} instead.",
                param="metadata",
            )
    return dict(value)


_ROLES = frozenset({"user", "assistant", "system", "developer"})


def input_items(value: Any) -> list[dict[str, Any]]:
    """The input as a list of items, each with an ``id`` and a ``status`` (as stored and listed).

    A string is one user message; message content given as a string becomes one text part.
    """
    if value is None:
        return []
    if isinstance(value, str):
        value = [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise invalid(
            f"Invalid type for 'input': expected a string or an array of input items, but got "
            f"{_json_type(value)} instead.",
            param="input",
            code="invalid_type",
        )
    items: list[dict[str, Any]] = []
    for position, raw in enumerate(value):
        param = f"input[{position}]"
        if not isinstance(raw, dict):
            raise invalid(
                f"Invalid type for '{param}': expected an input item object, but got "
                f"{_json_type(raw)} instead.",
                param=param,
                code="invalid_type",
            )
        item = dict(raw)
        kind = item.setdefault("type", "message")
        if not isinstance(kind, str):
            raise _wrong_type(f"{param}.type", "a string", kind)
        if kind == "message":
            role = item.get("role")
            if role not in _ROLES:
                raise invalid(
                    f"Invalid value for '{param}.role': expected one of 'user', 'assistant', "
                    f"'system' or 'developer'.",
                    param=f"{param}.role",
                )
            content = item.get("content")
            text_type = "output_text" if role == "assistant" else "input_text"
            if isinstance(content, str):
                part: dict[str, Any] = {"type": text_type, "text": content}
                if role == "assistant":
                    part["annotations"] = []
                item["content"] = [part]
            elif not isinstance(content, list) or not all(isinstance(p, dict) for p in content):
                raise invalid(
                    f"Invalid type for '{param}.content': expected a string or an array of "
                    "content parts.",
                    param=f"{param}.content",
                    code="invalid_type",
                )
        items.append(stamp_item(item))
    return items
