"""A2A requests in the engine's terms: the run a ``SendMessage`` asks for, page cursors of
``ListTasks``, and the ``Last-Event-ID`` a resubscribing client sends.
"""

from __future__ import annotations

import base64
import binascii
import re

import orjson
from a2a.server.context import ServerCallContext
from a2a.types import Message, SendMessageRequest
from a2a.utils.errors import InvalidParamsError
from google.protobuf.json_format import MessageToDict

from outlast.a2a.convert import message_input
from outlast.a2a.index import TaskRow
from outlast.agents.base import A2A_MESSAGE
from outlast.protocol.spec import (
    METADATA_MAX_KEY,
    METADATA_MAX_PAIRS,
    METADATA_MAX_VALUE,
    RunSpec,
    stamp_item,
)

LAST_EVENT_ID = "last-event-id"
DEFAULT_MODEL = "a2a"
"""The ``model`` an agent sees for an A2A task whose request metadata names none."""
_SEQUENCE = re.compile(r"[0-9]{1,18}")


def run_spec(params: SendMessageRequest, message: Message, previous: str | None) -> RunSpec:
    """The background run a checked user message asks for, continuing ``previous`` if any."""
    model, instructions, metadata = _request_options(params)
    return RunSpec(
        model=model,
        input_items=[stamp_item(item) for item in message_input(message)],
        instructions=instructions,
        metadata=metadata,
        previous_response_id=previous,
        background=True,
        extra={A2A_MESSAGE: MessageToDict(message)},
    )


def answer_spec(params: SendMessageRequest, previous: str, call_id: str, answer: str) -> RunSpec:
    """The run a message answering a task's pending call asks for: the call's
    ``function_call_output``, continuing the task's current run ``previous`` (a run paused by
    ``request.ask`` resumes from its journal, ``ask`` returning ``answer``)."""
    model, instructions, metadata = _request_options(params)
    output = {"type": "function_call_output", "call_id": call_id, "output": answer}
    return RunSpec(
        model=model,
        input_items=[stamp_item(output)],
        instructions=instructions,
        metadata=metadata,
        previous_response_id=previous,
        background=True,
        extra={A2A_MESSAGE: MessageToDict(params.message)},
    )


def _request_options(params: SendMessageRequest) -> tuple[str, str | None, dict[str, str]]:
    """The run's model, instructions and metadata from the request's metadata: ``model`` and
    ``instructions`` (strings) are passed to the agent as such, every other string value as
    response metadata (within OpenAI's metadata limits)."""
    if not params.HasField("metadata"):
        return DEFAULT_MODEL, None, {}
    metadata = MessageToDict(params.metadata)
    options: dict[str, str] = {}
    for name in ("model", "instructions"):
        value = metadata.pop(name, None)
        if value is not None:
            if not isinstance(value, str) or not value:
                raise InvalidParamsError(message=f"metadata.{name} must be a non-empty string.")
            options[name] = value
    strings = {key: value for key, value in metadata.items() if isinstance(value, str)}
    if len(strings) > METADATA_MAX_PAIRS:
        raise InvalidParamsError(
            message=f"Invalid 'metadata': too many properties. Expected at most "
            f"{METADATA_MAX_PAIRS} properties, but got {len(strings)} instead."
        )
    for key, value in strings.items():
        if len(key) > METADATA_MAX_KEY:
            raise InvalidParamsError(
                message=f"Invalid 'metadata': key '{key[:20]}…' is longer than "
                f"{METADATA_MAX_KEY} characters."
            )
        if len(value) > METADATA_MAX_VALUE:
            raise InvalidParamsError(
                message=f"Invalid 'metadata.{key}': string too long. Expected a string with "
                f"maximum length {METADATA_MAX_VALUE}, but got a string with length "
                f"{len(value)} instead."
            )
    return options.get("model", DEFAULT_MODEL), options.get("instructions"), strings


def last_event_id(context: ServerCallContext) -> int | None:
    headers = context.state.get("headers") or {}
    value = headers.get(LAST_EVENT_ID)
    if value is None or value == "":
        return None
    if not _SEQUENCE.fullmatch(value.strip()):
        raise InvalidParamsError(
            message=f"Invalid Last-Event-ID {value!r}: expected the sequence number (an integer "
            "of at least 0) of the last event received."
        )
    return int(value)


def encode_cursor(row: TaskRow) -> str:
    raw = orjson.dumps([row.created_at, row.task_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[float, str]:
    try:
        value = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        created, task_id = value
        if isinstance(created, int | float) and isinstance(task_id, str):
            return float(created), task_id
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        pass
    raise InvalidParamsError(message="Invalid page_token: pass the next_page_token of a page.")
