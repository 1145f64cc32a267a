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
from outlast.http.input_items import input_items, json_type
from outlast.http.limits import DEFAULT_LIMITS, InputLimits, check_input
from outlast.protocol.spec import (
    METADATA_MAX_KEY,
    METADATA_MAX_PAIRS,
    METADATA_MAX_VALUE,
    RunSpec,
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
# ``presence_penalty`` and ``frequency_penalty`` are Open Responses create parameters (and fields
# of its response object) that the SDK's types do not list: accepted and echoed.
PENALTIES = ("presence_penalty", "frequency_penalty")
KNOWN_PARAMS = _PARAMS | {"stream", *PENALTIES}

# The ranges OpenAI enforces: name -> (kind, minimum, maximum).
RANGES: dict[str, tuple[type, float | None, float | None]] = {
    "temperature": (float, 0, 2),
    "top_p": (float, 0, 1),
    "presence_penalty": (float, -2, 2),
    "frequency_penalty": (float, -2, 2),
    "max_output_tokens": (int, 16, None),
    "max_tool_calls": (int, 0, None),
    "top_logprobs": (int, 0, 20),
}

# Parameters outlast acts on itself; every other known parameter is echoed when ``Response`` has
# a field of that name, and otherwise accepted and ignored (e.g. ``include``, ``stream_options``).
_OWN = frozenset(
    {"model", "input", "instructions", "metadata", "previous_response_id", "store",
     "background", "stream", "conversation"}
)  # fmt: skip


def _wrong_type(name: str, expected: str, value: Any) -> Exception:
    return invalid(
        f"Invalid type for '{name}': expected {expected}, but got {json_type(value)} instead.",
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


def parse_create(body: Any, limits: InputLimits = DEFAULT_LIMITS) -> RunSpec:
    """Check a create body; raise :class:`~outlast.protocol.errors.APIError` if it is bad
    (``limits``: how large its input may be)."""
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
    _background_options(body.get("background_options"), background=background, stream=stream)
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
    check_input(body.get("input"), limits)
    items = input_items(body.get("input"))

    echo: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, value in body.items():
        if name in _OWN:
            continue
        if name in RANGES:
            _in_range(body, name, *RANGES[name])
        elif name in ("parallel_tool_calls",):
            _optional(body, name, bool, "a boolean")
        if name in PENALTIES:
            echo[name] = value
        elif name in RESPONSE_FIELDS:
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


def _in_range(
    body: dict[str, Any], name: str, kind: type, low: float | None, high: float | None
) -> None:
    value = _optional(body, name, kind, "a number" if kind is float else "an integer")
    if value is None:
        return
    what = "decimal" if kind is float else "integer"
    if low is not None and value < low:
        raise invalid(
            f"Invalid '{name}': {what} below minimum value. Expected a value >= {low}, but got "
            f"{value} instead.",
            param=name,
            code=f"{what}_below_min_value",
        )
    if high is not None and value > high:
        raise invalid(
            f"Invalid '{name}': {what} above maximum value. Expected a value <= {high}, but got "
            f"{value} instead.",
            param=name,
            code=f"{what}_above_max_value",
        )


_WINDOWS = ("soonest", "2h", "8h")
_CONTINUATION_ID_MAX = 512


def _background_options(value: Any, *, background: bool, stream: bool) -> None:
    """``background_options`` as the SDK's ``BackgroundOptions`` declares it: a
    ``completion_window`` of ``soonest`` (the default), ``2h`` or ``8h``, the windows needing
    ``background: true`` without ``stream``; a ``continuation_id`` string. The engine's queue
    honours the window (:mod:`outlast.engine.queue`)."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise _wrong_type("background_options", "an object", value)
    for name in value:
        if name not in ("completion_window", "continuation_id"):
            raise invalid(
                f"Unknown parameter: 'background_options.{name}'.",
                param=f"background_options.{name}",
                code="unknown_parameter",
            )
    window = value.get("completion_window")
    if window is not None and window not in _WINDOWS:
        raise invalid(
            "Invalid value for 'background_options.completion_window': expected one of "
            f"'soonest', '2h' or '8h', but got {window!r}.",
            param="background_options.completion_window",
        )
    continuation = value.get("continuation_id")
    if continuation is not None and (
        not isinstance(continuation, str) or len(continuation) > _CONTINUATION_ID_MAX
    ):
        raise invalid(
            "Invalid 'background_options.continuation_id': expected a string of at most "
            f"{_CONTINUATION_ID_MAX} characters.",
            param="background_options.continuation_id",
            code="invalid_type" if not isinstance(continuation, str) else "invalid_value",
        )
    if window in ("2h", "8h"):
        if not background:
            raise invalid(
                f"The '{window}' completion window requires 'background' to be true.",
                param="background",
            )
        if stream:
            raise invalid(
                f"The '{window}' completion window requires 'stream' to be false or omitted.",
                param="stream",
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
                f"{json_type(item)} instead.",
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
