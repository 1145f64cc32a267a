"""The ``input`` of a create request checked item by item, as OpenAI checks it.

Messages, by far the most common items (and the only ones in long chats), are checked here by
hand, part by part: the role, each content part's type and fields, an image's URL. Every other
item type is one of the ``openai`` SDK's input item union (``ResponseInputItemParam``) and is
validated with that type, imported the first time such an item arrives (the SDK's types are
heavy, and a server that only ever sees text needs none of them). An unknown ``type`` is refused
with the list of the SDK's.

Every error is a 400 whose ``param`` names the offending field (``input[2].content[0].text``).
"""

from __future__ import annotations

import functools
import urllib.parse
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, get_args, get_type_hints

from outlast.http.errors import APIError, invalid
from outlast.protocol.spec import stamp_item

if TYPE_CHECKING:
    from pydantic import TypeAdapter

ROLES = ("user", "assistant", "system", "developer")
ITEM_STATUSES = ("in_progress", "completed", "incomplete")
PHASES = ("commentary", "final_answer")
IMAGE_DETAILS = ("low", "high", "auto", "original")

# The content parts each role may carry (the SDK's EasyInputMessageParam, Message and
# ResponseOutputMessageParam together): input parts for everyone, output parts for the assistant.
_INPUT_PARTS = ("input_text", "input_image", "input_file")
_PARTS = {
    "user": _INPUT_PARTS,
    "system": _INPUT_PARTS,
    "developer": _INPUT_PARTS,
    "assistant": ("output_text", "refusal", *_INPUT_PARTS),
}

_TYPE_NAMES = {
    str: "a string", bool: "a boolean", int: "an integer", float: "a number",
    list: "an array", dict: "an object", type(None): "null",
}  # fmt: skip


def json_type(value: Any) -> str:
    """The JSON name of a value's type, as OpenAI's messages say it."""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _one_of(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    return ", ".join(quoted[:-1]) + f" or {quoted[-1]}" if len(quoted) > 1 else quoted[0]


def _wrong_type(param: str, expected: str, value: Any) -> APIError:
    return invalid(
        f"Invalid type for '{param}': expected {expected}, but got {json_type(value)} instead.",
        param=param,
        code="invalid_type",
    )


def _not_one_of(param: str, values: tuple[str, ...], value: Any) -> APIError:
    if not isinstance(value, str):
        return _wrong_type(param, f"one of {_one_of(values)}", value)
    return invalid(
        f"Invalid value for '{param}': '{value[:64]}'. Supported values are: {_one_of(values)}.",
        param=param,
    )


def _string(item: dict[str, Any], key: str, param: str, *, required: bool = True) -> None:
    value = item.get(key)
    if value is None and not required:
        return
    if value is None:
        raise invalid(
            f"Missing required parameter: '{param}.{key}'.",
            param=f"{param}.{key}",
            code="missing_required_parameter",
        )
    if not isinstance(value, str):
        raise _wrong_type(f"{param}.{key}", "a string", value)


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
            f"{json_type(value)} instead.",
            param="input",
            code="invalid_type",
        )
    return [_item(raw, f"input[{position}]") for position, raw in enumerate(value)]


def _item(raw: Any, param: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise invalid(
            f"Invalid type for '{param}': expected an input item object, but got "
            f"{json_type(raw)} instead.",
            param=param,
            code="invalid_type",
        )
    item = dict(raw)
    kind = item.setdefault("type", "message")
    if not isinstance(kind, str):
        raise _wrong_type(f"{param}.type", "a string", kind)
    # ``id`` and ``status`` are stored and listed with the item: null means "not given".
    for key in ("id", "status"):
        if key in item and item[key] is None:
            del item[key]
    if "id" in item:
        if not isinstance(item["id"], str):
            raise _wrong_type(f"{param}.id", "a string", item["id"])
        if not item["id"]:
            raise invalid(f"Invalid '{param}.id': empty string.", param=f"{param}.id")
    if kind == "message":
        if "status" in item and item["status"] not in ITEM_STATUSES:
            raise _not_one_of(f"{param}.status", ITEM_STATUSES, item["status"])
        return stamp_item(_message(item, param))
    # Other items' statuses differ by type (an image generation may be "generating"): the SDK's
    # type of the item checks the value, a string it must be for every one.
    if "status" in item and not isinstance(item["status"], str):
        raise _wrong_type(f"{param}.status", "a string", item["status"])
    # Checked with the id and status it is stored with (the SDK's types require some ids).
    _check_with_sdk(kind, stamp_item(item), param)
    return item


def _message(item: dict[str, Any], param: str) -> dict[str, Any]:
    role = item.get("role")
    if not isinstance(role, str) or role not in _PARTS:
        raise _not_one_of(f"{param}.role", ROLES, role)
    phase = item.get("phase")
    if phase is not None and phase not in PHASES:
        raise _not_one_of(f"{param}.phase", PHASES, phase)
    content = item.get("content")
    if isinstance(content, str):
        part: dict[str, Any] = {"type": "output_text" if role == "assistant" else "input_text",
                                "text": content}  # fmt: skip
        if role == "assistant":
            part["annotations"] = []
        item["content"] = [part]
        return item
    if not isinstance(content, list):
        raise invalid(
            f"Invalid type for '{param}.content': expected a string or an array of content "
            f"parts, but got {json_type(content)} instead.",
            param=f"{param}.content",
            code="invalid_type",
        )
    allowed = _PARTS[role]
    item["content"] = [
        _part(raw, f"{param}.content[{index}]", allowed) for index, raw in enumerate(content)
    ]
    return item


def _part(raw: Any, param: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _wrong_type(param, "a content part object", raw)
    part = dict(raw)
    kind = part.get("type")
    if kind not in allowed:
        raise _not_one_of(f"{param}.type", allowed, kind)
    if kind in ("input_text", "output_text"):
        _string(part, "text", param)
        if kind == "output_text":
            annotations = part.setdefault("annotations", [])
            if not isinstance(annotations, list):
                raise _wrong_type(f"{param}.annotations", "an array", annotations)
    elif kind == "refusal":
        _string(part, "refusal", param)
    elif kind == "input_image":
        _image(part, param)
    else:
        _file(part, param)
    return part


def _image(part: dict[str, Any], param: str) -> None:
    detail = part.get("detail")
    if detail is None:
        part["detail"] = "auto"  # OpenAI's default, and the SDK's type requires the field
    elif detail not in IMAGE_DETAILS:
        raise _not_one_of(f"{param}.detail", IMAGE_DETAILS, detail)
    _string(part, "file_id", param, required=False)
    url = part.get("image_url")
    if url is None:
        if part.get("file_id") is None:
            raise invalid(
                f"Invalid '{param}': an input_image needs an 'image_url' or a 'file_id'.",
                param=f"{param}.image_url",
                code="missing_required_parameter",
            )
        return
    if not isinstance(url, str):
        raise _wrong_type(f"{param}.image_url", "a string", url)
    if not valid_image_url(url):
        raise invalid(
            f"Invalid '{param}.image_url'. Expected a valid URL (http or https) or a base64 "
            "data URL of an image, but got a value with an invalid format.",
            param=f"{param}.image_url",
            code="invalid_image_url",
        )


def valid_image_url(url: str) -> bool:
    """An absolute ``http(s)`` URL with a host, or a ``data:image/…;base64,…`` URL."""
    if url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        return bool(comma and data) and header.startswith("image/") and header.endswith(";base64")
    try:
        parsed = urllib.parse.urlsplit(url)
    except ValueError:
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.hostname)


def _file(part: dict[str, Any], param: str) -> None:
    for key in ("file_id", "file_data", "file_url", "filename"):
        _string(part, key, param, required=False)
    if all(part.get(key) is None for key in ("file_id", "file_data", "file_url")):
        raise invalid(
            f"Invalid '{param}': an input_file needs a 'file_id', 'file_data' or 'file_url'.",
            param=f"{param}.file_id",
            code="missing_required_parameter",
        )


# -- every other item type: the SDK's own TypedDicts -----------------------------------------


def _literals(annotation: Any) -> Iterator[str]:
    for arg in get_args(annotation):
        if isinstance(arg, str):
            yield arg
        else:
            yield from _literals(arg)


@functools.cache
def sdk_item_types() -> dict[str, TypeAdapter[Any]]:
    """Each non-message item ``type`` of the SDK's input item union, with its validator."""
    from openai.types.responses.response_input_item_param import ResponseInputItemParam
    from pydantic import TypeAdapter

    adapters: dict[str, TypeAdapter[Any]] = {}
    for member in get_args(ResponseInputItemParam):
        for kind in _literals(get_type_hints(member, include_extras=True).get("type")):
            if kind != "message":
                adapters[kind] = TypeAdapter(member)
    return adapters


def _check_with_sdk(kind: str, item: dict[str, Any], param: str) -> None:
    from pydantic import ValidationError

    adapters = sdk_item_types()
    adapter = adapters.get(kind)
    if adapter is None:
        supported = ("message", *sorted(adapters))
        raise invalid(
            f"Invalid value for '{param}.type': '{kind[:64]}'. Supported values are: "
            f"{_one_of(supported)}.",
            param=f"{param}.type",
        )
    try:
        _drain(adapter.validate_python(item), ())
    except _Lazy as lazy:
        _refuse(item, param, lazy.prefix, lazy.error)
    except ValidationError as exc:
        _refuse(item, param, (), exc)


class _Lazy(Exception):
    """A validation error of a lazily validated field, with the location of that field."""

    def __init__(self, prefix: tuple[Any, ...], error: Exception) -> None:
        self.prefix = prefix
        self.error = error


def _refuse(item: dict[str, Any], param: str, prefix: tuple[Any, ...], exc: Any) -> None:
    # The deepest error of a union says what is wrong (not that the value is not a string).
    error = max(exc.errors(), key=lambda e: len(e["loc"]))
    where = param + _path(item, (*prefix, *error["loc"]))
    if error["type"] == "missing":
        raise invalid(
            f"Missing required parameter: '{where}'.",
            param=where,
            code="missing_required_parameter",
        ) from None
    raise invalid(f"Invalid value for '{where}': {error['msg']}.", param=where) from None


def _path(item: Any, loc: tuple[Any, ...]) -> str:
    """The JSON path of a pydantic error's location in ``item``: the keys and indexes that are
    in the data (a union's member names, which pydantic puts in the location too, are not)."""
    path, current = "", item
    for position, step in enumerate(loc):
        if isinstance(current, dict) and isinstance(step, str):
            if step in current:
                path += f".{step}"
                current = current[step]
            elif position == len(loc) - 1:
                path += f".{step}"  # a missing field
        elif isinstance(current, list) and isinstance(step, int) and 0 <= step < len(current):
            path += f"[{step}]"
            current = current[step]
    return path


_SCALARS = (str, int, float, bool, type(None))


def _drain(value: Any, at: tuple[Any, ...]) -> None:
    """Consume what pydantic validates lazily: the SDK types ``Iterable[...]`` fields, which
    pydantic checks only as they are iterated (``at``: where ``value`` is in the item)."""
    if isinstance(value, dict):
        for key, nested in value.items():
            if not isinstance(nested, _SCALARS):
                _drain(nested, (*at, key))
    elif isinstance(value, list | tuple):
        for index, nested in enumerate(value):
            if not isinstance(nested, _SCALARS):
                _drain(nested, (*at, index))
    elif hasattr(value, "__next__"):
        from pydantic import ValidationError

        try:
            for index, nested in enumerate(value):
                _drain(nested, (*at, index))
        except ValidationError as exc:
            raise _Lazy(at, exc) from None
