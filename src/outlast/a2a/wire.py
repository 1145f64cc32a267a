"""A run's stored events (Responses stream events) as A2A stream events, in their JSON wire form.

Every A2A event comes from exactly one stored event and carries its sequence number
(``metadata.sequence_number``), so a subscriber that passes back the last number it saw gets
every later event exactly once (design-notes invariant 3, across protocols). The mapping:

- ``response.created``: the :class:`Task` (``SUBMITTED``), first event of ``SendStreamingMessage``;
- ``response.in_progress``: a status update, ``WORKING``;
- ``response.output_text.delta``: an artifact chunk of the message's artifact (its id is the
  message item's id): ``append`` false for the first chunk, true after; ``output_text.done``
  closes it with an empty chunk marked ``last_chunk``;
- ``response.output_item.done`` of any other item (reasoning, a function call, its output): a
  ``WORKING`` status update whose agent message holds the item as a data part;
- ``response.completed`` / ``failed`` / ``incomplete`` (cancelled): the final status update.

Every other event (content parts, argument deltas, ``response.queued``, …) has no A2A
counterpart and is skipped.

Each A2A event is the JSON of a ``StreamResponse`` exactly as a2a-sdk's ``MessageToDict`` would
write it (camelCase names, default values left out, the sequence number an integer), built once
per stored event: the events a run has by the thousand (text chunks, ``WORKING``) are written
directly as bytes, the rare ones (the task, items, the final status) through the SDK's protobuf
types. The transports only frame these bytes (:mod:`outlast.a2a.routes`), one socket write per
batch of stored events, as the Responses API does; ``tests/unit/test_a2a_wire.py`` checks them
against the SDK's own conversion.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

import orjson
from a2a.types import (
    Artifact,
    Message,
    StreamResponse,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)
from google.protobuf import json_format

from outlast.a2a.convert import (
    PRODUCED_TYPES,
    SEQUENCE_KEY,
    item_message,
    produced_artifact,
    task_from_response,
    task_status,
    timestamp,
)
from outlast.asgi.stream import SSEStream
from outlast.protocol.events import TERMINAL_EVENT_TYPES, TERMINAL_STATUSES, Event
from outlast.protocol.fold import fold
from outlast.protocol.jsonbytes import dumps as exact_dumps

Frame = tuple[int, bytes]
"""One A2A stream event: the sequence number of its stored event, its ``StreamResponse`` JSON."""

# Deltas of items A2A shows only once they are done (a function call's arguments, a reasoning
# summary): the task as of an event needs the items' done events, not these.
_ITEM_DELTAS = frozenset(
    {"response.function_call_arguments.delta", "response.reasoning_summary_text.delta"}
)
_WORKING = TaskState.Name(TaskState.TASK_STATE_WORKING).encode()
# An artifact chunk after its text's head: the text, its flags, its sequence number.
_CHUNK = b'%b%b}]}%b,"metadata":{"sequence_number":%d}}}'
_dumps = orjson.dumps
_loads = orjson.loads


class StatusTimes(Protocol):
    """When a run's states began, as stored (:class:`outlast.a2a.times.RunTimes`)."""

    async def working_since(self) -> float: ...

    async def ended_at(self) -> float | None: ...


# Stored events whose A2A event is a WORKING status (its timestamp: when the run began working).
_WORKING_EVENTS = frozenset({"response.in_progress", "response.output_item.done"})


class HistoryLength(Protocol):
    """A request that may carry ``history_length`` (``GetTaskRequest``, a send's configuration)."""

    history_length: int

    def HasField(self, field_name: str) -> bool: ...


def proto_dict(message: Any) -> dict[str, Any]:
    """A protobuf message as a2a-sdk puts it on the wire."""
    result: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=False)
    return result


def stream_event(body: bytes) -> Task | TaskStatusUpdateEvent | Any:
    """The SDK's event object of a frame's JSON (for callers of the ``RequestHandler`` API)."""
    response = json_format.ParseDict(_loads(body), StreamResponse())
    return getattr(response, response.WhichOneof("payload") or "task")


async def closable(
    stream: AsyncIterator[list[Event]],
) -> AsyncGenerator[list[Event], None]:
    """An async generator over an engine stream: closing it (``contextlib.aclosing``) closes the
    stream, and with it the engine's hub subscription."""
    try:
        async for batch in stream:
            yield batch
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()


SHARED_FRAMES = 256
"""How far back (in events) a subscriber keeps a task's A2A events for the others: live
subscribers of one task are a batch or two apart at most (a subscriber far behind converts its
own), and a task's kept events cost this many times ~250 bytes at most."""
_NO_EVENT = b""  # kept for a stored event that has no A2A event
# Stored events whose A2A event is this subscriber's own: the task (cut to each request's
# history length), and the events that say where an artifact starts.
_OWN = frozenset({"response.created", "response.output_item.added", "response.output_text.done"})


class _SharedFrames:
    """The A2A events of one task's stored events (empty: none), by sequence number, which
    every subscriber of the task in this process reads: each stored event is converted once."""

    __slots__ = ("__weakref__", "frames", "holders")

    def __init__(self) -> None:
        self.frames: dict[int, bytes] = {}
        self.holders = 0
        """Subscribers of the task now: with one, nothing is kept (there is nobody to share with)."""

    def release(self) -> None:
        self.holders -= 1
        if self.holders <= 1:
            self.frames.clear()


# Task id -> its events, while a subscriber of the task holds them (then they go with it).
_SHARED: weakref.WeakValueDictionary[str, _SharedFrames] = weakref.WeakValueDictionary()


class WireTranslator:
    """Turns one task's stored events into A2A stream events (one at most per stored event)."""

    __slots__ = (
        "__weakref__",
        "_chunk_heads",
        "_ids",
        "_opened",
        "_raw_heads",
        "_shared",
        "_times",
        "artifacts",
        "context_id",
        "ended_at",
        "queued",
        "task_id",
        "user_messages",
        "working_at",
    )

    def __init__(
        self,
        task_id: str,
        context_id: str,
        user_messages: Sequence[Message],
        run_id: str | None = None,
        artifacts: Sequence[Artifact] = (),
        times: StatusTimes | None = None,
    ) -> None:
        """``run_id``: the run whose events are fed, when it is a later turn of the task (then
        ``user_messages`` is the history before its output, and ``artifacts`` the earlier
        turns'). ``times``: where the statuses' timestamps are stored (without it, in a unit
        test, they are the time of conversion); :meth:`ready` loads them."""
        self._times = times
        self.working_at: float | None = None
        self.ended_at: float | None = None
        self.task_id = task_id
        self.context_id = context_id
        self.user_messages = list(user_messages)
        self.artifacts = list(artifacts)
        self.queued: list[Message] = []
        """Messages steering the run, not yet carried by a turn: its tasks' history ends with
        them (:mod:`outlast.a2a.steering`)."""
        self._ids = b'"taskId":' + _dumps(task_id) + b',"contextId":' + _dumps(context_id)
        # The bytes before a chunk's text, per artifact (a run has one or a few).
        self._chunk_heads: dict[str, bytes] = {}
        self._raw_heads: dict[bytes, bytes] = {}  # the same, by the id as stored events hold it
        # Message items whose output_item.added was in this stream and whose first chunk is yet
        # to be sent: that chunk starts the artifact (append false). A chunk of any other message
        # continues an artifact the subscriber already has (from the Task or earlier events).
        self._opened: set[str] = set()
        # By run: the sequence numbers a task's events are kept by are its current run's.
        run = run_id or task_id
        shared = _SHARED.get(run)
        if shared is None:
            shared = _SHARED[run] = _SharedFrames()
        self._shared = shared
        shared.holders += 1
        weakref.finalize(self, shared.release)

    async def ready(
        self, batch: Sequence[Event] = (), response: dict[str, Any] | None = None
    ) -> None:
        """Load the stored times that the A2A events of ``batch`` (or the task as of
        ``response``) carry: call it before feeding them. Each is read once per subscriber."""
        times = self._times
        if times is None:
            return
        status = response.get("status") if response is not None else None
        if self.working_at is None and (
            (status is not None and status != "queued")
            or any(event.type in _WORKING_EVENTS for event in batch)
        ):
            self.working_at = await times.working_since()
        if self.ended_at is None and (
            status in TERMINAL_STATUSES or (batch and batch[-1].type in TERMINAL_EVENT_TYPES)
        ):
            # The terminal event is the last of a run's log, so the last of its batch.
            self.ended_at = await times.ended_at()

    def status_time(self, response: dict[str, Any]) -> float | None:
        """The stored time of the state a response object is in (``None``: not known)."""
        status = response.get("status")
        if status == "queued":
            created = response.get("created_at")
            return float(created) if isinstance(created, int | float) else None
        if status in TERMINAL_STATUSES:
            if self.ended_at is not None:
                return self.ended_at
            completed = response.get("completed_at")
            return float(completed) if isinstance(completed, int | float) else None
        return self.working_at

    def task_object(self, response: dict[str, Any], at: float | None = None) -> Task:
        """The task of a response object, as the SDK's type."""
        if at is None:
            at = self.status_time(response)
        task = task_from_response(
            response, self.context_id, self.user_messages, at, self.task_id, self.artifacts
        )
        task.history.extend(self.queued)
        return task

    def task(self, response: dict[str, Any], seq: int, task: Task | None = None) -> bytes:
        """The task as of the stored event ``seq`` (``response`` is its response object, ``task``
        the task made of it when the caller has cut its history)."""
        body = proto_dict(task if task is not None else self.task_object(response))
        body["metadata"] = {SEQUENCE_KEY: seq}
        return exact_dumps({"task": body})

    def feed(self, event: Event) -> bytes | None:
        """The A2A event of a stored event, or ``None`` if it has none: converted once for every
        subscriber of the task in this process, unless it depends on what this one has seen."""
        kind = event.type
        if kind in _OWN or (self._opened and kind == "response.output_text.delta"):
            # It changes or depends on which chunk starts an artifact for this subscriber.
            return self._convert(event)
        if self._shared.holders < 2:
            return self._convert(event)
        shared = self._shared.frames
        body = shared.get(event.seq)
        if body is None:
            body = shared[event.seq] = self._convert(event) or _NO_EVENT
            # The one this many events back: each subscriber keeps at most this many (O(1),
            # where dropping the oldest entry of a dict is not).
            shared.pop(event.seq - SHARED_FRAMES, None)
        return body or None

    def _convert(self, event: Event) -> bytes | None:
        kind = event.type
        if kind == "response.output_text.delta":
            if not self._opened:
                parts = _delta_parts(event.data)
                if parts is not None:
                    head = self._raw_heads.get(parts[0])
                    if head is not None:
                        return _CHUNK % (head, parts[1], b',"append":true', event.seq)
            payload = _loads(event.data)
            item_id = payload["item_id"]
            first = item_id in self._opened
            if first:
                self._opened.discard(item_id)
            return self._chunk(
                item_id, payload["delta"], event.seq, b"" if first else b',"append":true'
            )
        if kind == "response.output_item.added":
            item = _loads(event.data)["item"]
            if item.get("type") == "message":
                self._opened.add(item["id"])
            return None
        if kind == "response.output_text.done":
            item_id = _loads(event.data)["item_id"]
            self._opened.discard(item_id)
            return self._chunk(item_id, "", event.seq, b',"append":true,"lastChunk":true')
        if kind == "response.in_progress":
            stamp = _dumps(timestamp(self.working_at).ToJsonString())
            return (
                b'{"statusUpdate":{' + self._ids + b',"status":{"state":"' + _WORKING
                + b'","timestamp":' + stamp + b'},"metadata":{"sequence_number":'
                + str(event.seq).encode() + b"}}}"
            )  # fmt: skip
        if kind == "response.output_item.done":
            item = _loads(event.data)["item"]
            if item.get("type") == "message":
                return None
            if item.get("type") in PRODUCED_TYPES:
                return self._artifact(produced_artifact(item), event.seq)
            status = TaskStatus(
                state=TaskState.TASK_STATE_WORKING,
                timestamp=timestamp(self.working_at),
                message=item_message(self.task_id, self.context_id, item),
            )
            return self._status(status, event.seq)
        if kind in TERMINAL_EVENT_TYPES:
            response = _loads(event.data)["response"]
            at = self.status_time(response)
            return self._status(task_status(self.task_id, self.context_id, response, at), event.seq)
        if kind == "response.created":
            return self.task(_loads(event.data)["response"], event.seq)
        return None

    async def subscription(
        self,
        snapshot: dict[str, Any],
        snapshot_seq: int,
        cursor: int | None,
        events_after: Callable[[int], Awaitable[AsyncIterator[list[Event]]]],
    ) -> AsyncGenerator[list[Frame]]:
        """``SubscribeToTask`` from the task's stored ``snapshot`` (as of ``snapshot_seq``): the
        task first (as of ``cursor``, the ``Last-Event-ID``, if any; else now), then every event
        after it, from ``events_after(n)`` (the engine's stream after event ``n``)."""
        # ``base``: the state to fold stored events into, up to the cursor, before the first
        # event (the task as of the cursor) can be sent; None once it has been sent.
        base: dict[str, Any] | None = None
        folded: list[Event] = []
        await self.ready(response=snapshot)
        if cursor is None:
            after = snapshot_seq
            yield [(after, self.task(snapshot, after))]
        elif snapshot_seq <= cursor:
            base, after = snapshot, snapshot_seq
        else:
            base, after = {}, -1
        if base is not None and after == cursor:
            yield [(cursor, self.task(base, cursor))]
            base = None
        last = after
        async with contextlib.aclosing(closable(await events_after(after))) as batches:
            async for batch in batches:
                if not batch:
                    yield []  # a quiet spell
                    continue
                last = batch[-1].seq
                await self.ready(batch)
                if base is None:
                    # The common case, as tight as it can be: each event's A2A event, if any.
                    feed = self.feed
                    frames = [
                        (event.seq, body)
                        for event in batch
                        if event.type != "response.created" and (body := feed(event)) is not None
                    ]
                else:
                    frames, base = self._catch_up(batch, base, folded, cursor)
                if frames:
                    yield frames
        if base is not None:
            # The cursor is at or past the end of a finished task: its final state is all there is.
            yield [(last, self.task(fold(base, folded).to_dict(), last))]

    def _catch_up(
        self,
        batch: list[Event],
        base: dict[str, Any],
        folded: list[Event],
        cursor: int | None,
    ) -> tuple[list[Frame], dict[str, Any] | None]:
        """A batch while the task as of ``cursor`` is still to be sent: the events up to the
        cursor are folded into ``base`` (and sent as that task), those after it translated."""
        frames: list[Frame] = []
        pending: dict[str, Any] | None = base
        for event in batch:
            if pending is not None and cursor is not None:
                if event.seq <= cursor:
                    if event.type not in _ITEM_DELTAS:
                        folded.append(event)
                    if event.seq == cursor:
                        frames.append((cursor, self.task(fold(pending, folded).to_dict(), cursor)))
                        pending = None
                    continue
                frames.append((cursor, self.task(fold(pending, folded).to_dict(), cursor)))
                pending = None
            if event.type == "response.created":
                continue  # the task was sent first, as of the cursor
            body = self.feed(event)
            if body is not None:
                frames.append((event.seq, body))
        return frames, pending

    def _chunk(self, item_id: str, text: str, seq: int, flags: bytes) -> bytes:
        head = self._chunk_heads.get(item_id)
        if head is None:
            head = (
                b'{"artifactUpdate":{' + self._ids + b',"artifact":{"artifactId":'
                + _dumps(item_id) + b',"parts":[{"text":'
            )  # fmt: skip
            self._chunk_heads[item_id] = head
            self._raw_heads[item_id.encode()] = head
        return _CHUNK % (head, _dumps(text), flags, seq)

    def _artifact(self, artifact: Artifact, seq: int) -> bytes:
        """A whole artifact (a file or data) in one update: it is its own first and last chunk."""
        event = TaskArtifactUpdateEvent(
            task_id=self.task_id, context_id=self.context_id, artifact=artifact, last_chunk=True
        )
        body = proto_dict(event)
        body["metadata"] = {SEQUENCE_KEY: seq}
        return exact_dumps({"artifactUpdate": body})

    def _status(self, status: TaskStatus, seq: int) -> bytes:
        event = TaskStatusUpdateEvent(
            task_id=self.task_id, context_id=self.context_id, status=status
        )
        body = proto_dict(event)
        body["metadata"] = {SEQUENCE_KEY: seq}
        return exact_dumps({"statusUpdate": body})


_DELTA_HEAD = b'{"type":"response.output_text.delta","item_id":"'
_DELTA_TEXT = b',"delta":"'
_DELTA_TAIL = b',"logprobs":[],"sequence_number":'


def _delta_parts(data: bytes) -> tuple[bytes, bytes] | None:
    """The item id and the text (as its JSON string, escapes and all) of a stored text delta as
    the normaliser writes it, read without parsing the whole event; ``None`` for any other
    layout (the caller parses it). Inside a JSON string every ``"`` is escaped, so the markers
    around the text cannot occur in it."""
    if not data.startswith(_DELTA_HEAD):
        return None
    id_end = data.find(b'"', len(_DELTA_HEAD))
    text = data.find(_DELTA_TEXT, id_end)
    tail = data.rfind(_DELTA_TAIL)
    if id_end < 0 or text < 0 or tail <= text:
        return None
    return data[len(_DELTA_HEAD) : id_end], data[text + len(_DELTA_TEXT) - 1 : tail]


def cut_history(task: dict[str, Any], config: HistoryLength) -> dict[str, Any]:
    """A task's JSON with at most ``config.history_length`` messages of its history (the newest),
    as a2a-sdk's ``apply_history_length`` cuts the task itself; ``task`` is left as it is."""
    history = task.get("history")
    if not history or not config.HasField("history_length"):
        return task
    length = config.history_length
    if length == 0:
        return {key: value for key, value in task.items() if key != "history"}
    if 0 < length < len(history):
        return {**task, "history": history[-length:]}
    return task


# -- the streaming response --------------------------------------------------------------------

KEEPALIVE = b": keep-alive\r\n\r\n"
"""Sent for a quiet spell of the engine's stream: proxies see traffic and keep it open."""


# What every A2A stream is sent with (as a2a-sdk's own SSE responses are).
A2A_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"connection", b"keep-alive"),
    (b"x-accel-buffering", b"no"),
]


def _written(chunk: bytes) -> bytes:
    return chunk


class FrameStream(SSEStream[bytes]):
    """``text/event-stream`` from chunks of SSE frames already written, one socket write each."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        super().__init__(chunks, _written, A2A_SSE_HEADERS)
