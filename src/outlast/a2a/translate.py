"""A run's stored events (Responses stream events) as A2A stream events.

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
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

import orjson
from a2a.types import (
    Artifact,
    Message,
    Part,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)

from outlast.a2a.convert import (
    item_message,
    task_from_response,
    task_status,
    timestamp,
    with_sequence,
)
from outlast.protocol.events import TERMINAL_EVENT_TYPES, Event

A2AEvent = Task | TaskStatusUpdateEvent | TaskArtifactUpdateEvent


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


async def stored_events(
    batches: AsyncIterator[list[Event]],
) -> AsyncIterator[tuple[Event, dict[str, Any]]]:
    """Each event of an engine stream, in order, with its parsed JSON (keep-alives skipped)."""
    async for batch in batches:
        for event in batch:
            yield event, orjson.loads(event.data)


class Translator:
    """Turns one task's stored events into A2A events (one at most per stored event)."""

    def __init__(self, task_id: str, context_id: str, user_messages: Sequence[Message]) -> None:
        self.task_id = task_id
        self.context_id = context_id
        self.user_messages = list(user_messages)
        # Message items whose output_item.added was in this stream and whose first chunk is yet
        # to be sent: that chunk starts the artifact (append false). A chunk of any other message
        # continues an artifact the subscriber already has (from the Task or earlier events).
        self._opened: set[str] = set()

    def task(self, response: dict[str, Any], seq: int, at: float | None = None) -> Task:
        """The task as of the stored event ``seq`` (``response`` is its response object)."""
        task = task_from_response(response, self.context_id, self.user_messages, at)
        with_sequence(task.metadata, seq)
        return task

    def feed(self, event: Event, payload: dict[str, Any]) -> A2AEvent | None:
        kind = event.type
        result: A2AEvent | None = None
        if kind == "response.output_text.delta":
            item_id = payload["item_id"]
            first = item_id in self._opened
            self._opened.discard(item_id)
            result = self._chunk(item_id, payload["delta"], append=not first)
        elif kind == "response.output_item.added":
            item = payload["item"]
            if item.get("type") == "message":
                self._opened.add(item["id"])
        elif kind == "response.output_text.done":
            self._opened.discard(payload["item_id"])
            result = self._chunk(payload["item_id"], "", append=True, last=True)
        elif kind == "response.output_item.done":
            item = payload["item"]
            if item.get("type") != "message":
                status = TaskStatus(
                    state=TaskState.TASK_STATE_WORKING,
                    timestamp=timestamp(),
                    message=item_message(self.task_id, self.context_id, item),
                )
                result = self._status(status)
        elif kind == "response.in_progress":
            result = self._status(
                TaskStatus(state=TaskState.TASK_STATE_WORKING, timestamp=timestamp())
            )
        elif kind in TERMINAL_EVENT_TYPES:
            result = self._status(task_status(self.task_id, self.context_id, payload["response"]))
        elif kind == "response.created":
            result = self.task(payload["response"], event.seq)
        if result is not None:
            with_sequence(result.metadata, event.seq)
        return result

    def _chunk(
        self, item_id: str, text: str, *, append: bool, last: bool = False
    ) -> TaskArtifactUpdateEvent:
        return TaskArtifactUpdateEvent(
            task_id=self.task_id,
            context_id=self.context_id,
            artifact=Artifact(artifact_id=item_id, parts=[Part(text=text)]),
            append=append,
            last_chunk=last,
        )

    def _status(self, status: TaskStatus) -> TaskStatusUpdateEvent:
        return TaskStatusUpdateEvent(
            task_id=self.task_id, context_id=self.context_id, status=status
        )
