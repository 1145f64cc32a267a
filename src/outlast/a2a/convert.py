"""Between A2A's objects (a2a-sdk protobufs) and outlast's Responses shapes.

- An A2A user :class:`Message` becomes the Responses input items of a run.
- A response object (the JSON of ``GET /v1/responses/{id}``) becomes an A2A :class:`Task`:
  its status a task state, each assistant message an artifact of text, every other output item
  (reasoning, function calls and their outputs) an agent message with one data part, in the
  task's history after the user's message.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from a2a.types import (
    Artifact,
    Message,
    Part,
    Role,
    Task,
    TaskState,
    TaskStatus,
)
from a2a.utils.errors import InvalidParamsError
from google.protobuf import json_format, struct_pb2, timestamp_pb2

from outlast.engine.steering import STEERED

SEQUENCE_KEY = "sequence_number"
"""The metadata key of every streamed event that holds its sequence number (also the SSE id)."""

# Run status → task state. ``incomplete`` (the run ended early, e.g. a token limit) is not a
# success A2A can express, so it is FAILED with a message saying why.
STATE_OF_STATUS: Mapping[str, TaskState] = {
    "queued": TaskState.TASK_STATE_SUBMITTED,
    "in_progress": TaskState.TASK_STATE_WORKING,
    "completed": TaskState.TASK_STATE_COMPLETED,
    "failed": TaskState.TASK_STATE_FAILED,
    "cancelled": TaskState.TASK_STATE_CANCELED,
    "incomplete": TaskState.TASK_STATE_FAILED,
}
STEERED_TEXT = "Steered: the task goes on with the new input."
"""The text of the ``WORKING`` status a run steered at a safe boundary ends with."""
TERMINAL_STATES = frozenset(
    {
        TaskState.TASK_STATE_COMPLETED,
        TaskState.TASK_STATE_FAILED,
        TaskState.TASK_STATE_CANCELED,
        TaskState.TASK_STATE_REJECTED,
    }
)


def task_state(status: str) -> TaskState:
    """The A2A task state of a run status."""
    return STATE_OF_STATUS.get(status, TaskState.TASK_STATE_WORKING)


def pending_call(response: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The function call a completed response ends with, left to its caller to answer (a
    question of ``request.ask``, or a tool the client runs), else ``None``: such a task is
    ``INPUT_REQUIRED``, and a message to it answers the call."""
    if response.get("status") != "completed":
        return None
    output = response.get("output") or ()
    last = output[-1] if output else None
    if isinstance(last, Mapping) and last.get("type") == "function_call":
        return last
    return None


def steered(response: Mapping[str, Any]) -> bool:
    """The response ended at a safe boundary for steering input (``incomplete``, reason
    ``steered``): its task goes on, in the successor that carries the input."""
    if response.get("status") != "incomplete":
        return False
    details = response.get("incomplete_details")
    return isinstance(details, Mapping) and details.get("reason") == STEERED


def response_state(response: Mapping[str, Any]) -> TaskState:
    """The A2A task state of a response object: its status's, ``INPUT_REQUIRED``, or
    ``WORKING`` for a steered one (the task goes on)."""
    if pending_call(response) is not None:
        return TaskState.TASK_STATE_INPUT_REQUIRED
    if steered(response):
        return TaskState.TASK_STATE_WORKING
    return task_state(str(response.get("status")))


# -- A2A message → Responses input ------------------------------------------------------------


def _data_url(media_type: str, raw: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(raw).decode('ascii')}"


def _content_part(part: Part, position: int) -> dict[str, Any]:
    """One Responses input content part for one A2A part."""
    kind = part.WhichOneof("content")
    media_type = part.media_type or ""
    if kind == "text":
        return {"type": "input_text", "text": part.text}
    if kind == "data":
        # Structured data reaches the agent as its JSON text: agents read text.
        value = json_format.MessageToDict(part.data)
        return {"type": "input_text", "text": orjson.dumps(value).decode()}
    if kind == "url":
        if media_type.startswith("image/"):
            return {"type": "input_image", "image_url": part.url, "detail": "auto"}
        file: dict[str, Any] = {"type": "input_file", "file_url": part.url}
        if part.filename:
            file["filename"] = part.filename
        return file
    if kind == "raw":
        url = _data_url(media_type or "application/octet-stream", part.raw)
        if media_type.startswith("image/"):
            return {"type": "input_image", "image_url": url, "detail": "auto"}
        return {"type": "input_file", "file_data": url, "filename": part.filename or "file"}
    raise InvalidParamsError(
        message=f"message.parts[{position}] has no content (text, data, url or raw)."
    )


def media_type_matches(media_type: str, modes: Iterable[str]) -> bool:
    """Whether ``media_type`` (parameters ignored, any case) is one of ``modes``, which may be
    ``*/*`` or ``type/*``."""
    kind = media_type.partition(";")[0].strip().lower()
    major = kind.partition("/")[0]
    for mode in modes:
        mode = mode.strip().lower()
        if mode in ("*/*", kind) or (mode.endswith("/*") and mode[:-2] == major):
            return True
    return False


def unaccepted_part(message: Message, modes: Iterable[str]) -> tuple[int, str] | None:
    """The first part (its position and media type) whose declared media type is not among the
    agent's input ``modes``, else ``None``. A part that declares none is text, data, or a file
    the sender did not type, and is not checked."""
    accepted = list(modes)
    for position, part in enumerate(message.parts):
        if part.media_type and not media_type_matches(part.media_type, accepted):
            return position, part.media_type
    return None


def message_input(message: Message) -> list[dict[str, Any]]:
    """The Responses input of an A2A user message: one user message item."""
    content = [_content_part(part, i) for i, part in enumerate(message.parts)]
    return [{"type": "message", "role": "user", "content": content}]


# -- Responses output → A2A task ---------------------------------------------------------------


def timestamp(seconds: float | None = None) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int((time.time() if seconds is None else seconds) * 1e9))
    return stamp


def struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    result.update(dict(values))
    return result


def message_text(item: Mapping[str, Any]) -> str:
    """The text of a Responses message item (its text parts, joined)."""
    return "".join(
        part["text"]
        for part in item.get("content") or ()
        if isinstance(part, Mapping) and isinstance(part.get("text"), str)
    )


def text_artifact(item_id: str, text: str) -> Artifact:
    return Artifact(artifact_id=item_id, parts=[Part(text=text)])


PRODUCED_TYPES = frozenset({"outlast_file", "outlast_data"})
"""Output items an agent yields as ``outlast.File`` / ``outlast.Data``: artifacts over A2A."""


def produced_artifact(item: Mapping[str, Any]) -> Artifact:
    """An ``outlast_file`` item as an artifact with one file part (its bytes or its URL), an
    ``outlast_data`` item as one with one data part; the artifact id is the item's id."""
    media_type = str(item.get("media_type") or "")
    if item.get("type") == "outlast_data":
        data: Any = item.get("data")
        value = struct_pb2.Value()
        json_format.ParseDict(data, value)
        part = Part(data=value, media_type=media_type or "application/json")
        return Artifact(artifact_id=str(item["id"]), parts=[part])
    name = str(item.get("filename") or "")
    file_data = item.get("file_data")
    if isinstance(file_data, str):
        # A data: URL, as the normaliser writes it: the bytes are after the comma.
        part = Part(raw=base64.b64decode(file_data.partition(",")[2]), media_type=media_type)
    else:
        part = Part(url=str(item.get("file_url") or ""), media_type=media_type)
    part.filename = name
    return Artifact(artifact_id=str(item["id"]), name=name, parts=[part])


def item_message(task_id: str, context_id: str, item: Mapping[str, Any]) -> Message:
    """An output item that is not text (reasoning, a tool call, its output) as an agent message."""
    value = struct_pb2.Value()
    json_format.ParseDict(dict(item), value)
    return Message(
        message_id=str(item.get("id") or uuid.uuid4()),
        role=Role.ROLE_AGENT,
        task_id=task_id,
        context_id=context_id,
        parts=[Part(data=value, media_type="application/json")],
        metadata=struct({"type": str(item.get("type", ""))}),
    )


def question_message(task_id: str, context_id: str, call: Mapping[str, Any]) -> Message:
    """What an ``INPUT_REQUIRED`` task asks: the call's name in words, its arguments (the
    ``request.ask`` payload) as a data part, and its name and ``call_id`` in the metadata."""
    try:
        payload: Any = orjson.loads(call.get("arguments") or "null")
    except orjson.JSONDecodeError:
        payload = call.get("arguments")
    value = struct_pb2.Value()
    json_format.ParseDict(payload, value)
    name = str(call.get("name", ""))
    return Message(
        message_id=f"{task_id}-input",
        role=Role.ROLE_AGENT,
        task_id=task_id,
        context_id=context_id,
        parts=[
            Part(text=f"The agent asks {name!r}: answer with a message to this task."),
            Part(data=value, media_type="application/json"),
        ],
        metadata=struct({"name": name, "call_id": str(call.get("call_id", ""))}),
    )


def status_message(task_id: str, context_id: str, response: Mapping[str, Any]) -> Message | None:
    """Why a run ended without completing, as an agent message (``None`` if nothing to say)."""
    status = response.get("status")
    text = None
    call = pending_call(response)
    if call is not None:
        return question_message(task_id, context_id, call)
    if status == "failed":
        error = response.get("error") or {}
        text = str(error.get("message") or "The task failed.")
    elif steered(response):
        return Message(
            message_id=f"{task_id}-steered",
            role=Role.ROLE_AGENT,
            task_id=task_id,
            context_id=context_id,
            parts=[Part(text=STEERED_TEXT)],
            metadata=struct({"reason": STEERED}),
        )
    elif status == "incomplete":
        details = response.get("incomplete_details") or {}
        reason = details.get("reason") or "unknown"
        text = f"The response ended incomplete (reason: {reason})."
    if text is None:
        return None
    return Message(
        message_id=f"{task_id}-status",
        role=Role.ROLE_AGENT,
        task_id=task_id,
        context_id=context_id,
        parts=[Part(text=text)],
    )


def task_status(
    task_id: str, context_id: str, response: Mapping[str, Any], at: float | None = None
) -> TaskStatus:
    status = TaskStatus(state=response_state(response), timestamp=timestamp(at))
    message = status_message(task_id, context_id, response)
    if message is not None:
        status.message.CopyFrom(message)
    return status


def task_from_response(
    response: Mapping[str, Any],
    context_id: str,
    user_messages: Iterable[Message] = (),
    at: float | None = None,
    task_id: str | None = None,
    artifacts: Iterable[Artifact] = (),
) -> Task:
    """The A2A task of a response object: its id is the response's, unless the response is a
    later turn of ``task_id``; ``user_messages`` (the history before the response's own
    output) and ``artifacts`` (those of earlier turns) come first."""
    task_id = task_id or str(response["id"])
    task = Task(id=task_id, context_id=context_id)
    task.status.CopyFrom(task_status(task_id, context_id, response, at))
    task.history.extend(user_messages)
    task.artifacts.extend(artifacts)
    for item in response.get("output") or ():
        if item.get("type") == "message" and item.get("role", "assistant") == "assistant":
            task.artifacts.append(text_artifact(str(item["id"]), message_text(item)))
        elif item.get("type") in PRODUCED_TYPES:
            task.artifacts.append(produced_artifact(item))
        else:
            task.history.append(item_message(task_id, context_id, item))
    return task


def answer_text(message: Message) -> str:
    """A message answering an ``INPUT_REQUIRED`` task as the answer's text (what
    ``request.ask`` returns): its text parts joined, or else the JSON of its one data part."""
    texts = [part.text for part in message.parts if part.WhichOneof("content") == "text"]
    if texts:
        return "".join(texts)
    data = [part for part in message.parts if part.WhichOneof("content") == "data"]
    if len(data) == 1:
        return orjson.dumps(json_format.MessageToDict(data[0].data)).decode()
    raise InvalidParamsError(
        message="A message answering a task's question needs text parts, or one data part."
    )


def with_sequence(metadata: struct_pb2.Struct, seq: int) -> None:
    """Mark an event with the sequence number of the stored event it comes from."""
    metadata.update({SEQUENCE_KEY: seq})


def stored_message(message: Message) -> bytes:
    """A message as JSON, for the task index."""
    return json_format.MessageToJson(message, indent=None).encode()


def stored_messages(messages: Iterable[Message]) -> bytes:
    """Several messages as one JSON array, for a turn of the task index that steering input
    began (see :func:`load_messages`)."""
    return orjson.dumps([json_format.MessageToDict(message) for message in messages])


def load_message(data: bytes | str) -> Message:
    return json_format.Parse(data, Message())


def load_messages(data: bytes) -> list[Message]:
    """The messages a turn of the task index holds: one message's JSON, or an array of them."""
    if data.lstrip()[:1] == b"[":
        return [json_format.ParseDict(value, Message()) for value in orjson.loads(data)]
    return [load_message(data)]
