"""What each A2A call means, over the engine: an a2a-sdk ``RequestHandler``.

A task is a run of the engine, and its id is the response id: a task started over A2A is also
``GET /v1/responses/{id}`` for the same API key. The handler calls the engine's public methods
only (as the Responses routes do) and keeps nothing of a run itself; the task index
(:mod:`outlast.a2a.index`) adds the context and the user's message.

- ``SendMessage`` starts a background run and, unless ``configuration.return_immediately``,
  waits for its end; ``SendStreamingMessage`` streams it (:mod:`outlast.a2a.wire`).
- A message in a known context continues its conversation: the new run's
  ``previous_response_id`` is the context's newest task, so the agent sees every earlier turn.
- ``SubscribeToTask`` follows the spec (the task now, then live events; an error for a finished
  task) unless the request carries ``Last-Event-ID: N``: then the task as of event ``N``, and
  every event after ``N`` exactly once, replayed from the store, then live, finished or not.

It is over 500 lines because a2a-sdk's ``RequestHandler`` is one class with a method per A2A
operation; what is not a method of it lives beside it (:mod:`.requests`, :mod:`.wire`,
:mod:`.convert`, :mod:`.index`, :mod:`.steering`, and :mod:`.following`, the following of a task
from one turn to the next, mixed in).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from a2a.server.context import ServerCallContext
from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.server.tasks.push_notification_config_store import (
    PushNotificationConfigStore,
    normalize_push_notification_config,
)
from a2a.types import (
    AgentCard,
    Artifact,
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetExtendedAgentCardRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTaskPushNotificationConfigsResponse,
    ListTasksRequest,
    ListTasksResponse,
    Message,
    Part,
    Role,
    SendMessageRequest,
    SubscribeToTaskRequest,
    Task,
    TaskPushNotificationConfig,
    TaskState,
    TaskStatusUpdateEvent,
)
from a2a.utils.errors import (
    ContentTypeNotSupportedError,
    InternalError,
    InvalidParamsError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from a2a.utils.proto_utils import validate_proto_required_fields
from a2a.utils.task import apply_history_length, validate_history_length, validate_page_size

from outlast.a2a.convert import (
    TERMINAL_STATES,
    answer_text,
    load_message,
    load_messages,
    message_text,
    pending_call,
    response_state,
    steered,
    stored_message,
    task_from_response,
    task_state,
    unaccepted_part,
)
from outlast.a2a.errors import from_engine
from outlast.a2a.following import QUIET_SPELL, TurnFollowing
from outlast.a2a.index import TaskIndex, TaskRow
from outlast.a2a.push import PushWatcher, push_url_allowed
from outlast.a2a.requests import (
    answer_spec,
    decode_cursor,
    encode_cursor,
    last_event_id,
    run_spec,
)
from outlast.a2a.steering import EndWatch, RunEnded, TaskSteering
from outlast.a2a.times import RunTimes
from outlast.a2a.wire import (
    Frame,
    WireTranslator,
    cut_history,
    proto_dict,
    stream_event,
)
from outlast.agents.options import replies_with_message
from outlast.engine import Engine, RunHandle
from outlast.engine.errors import EngineError, NotFound
from outlast.protocol.events import TERMINAL_STATUSES, Event
from outlast.protocol.jsonbytes import dumps as exact_dumps
from outlast.protocol.spec import RunSpec
from outlast.store.base import ResponseRecord

log = logging.getLogger("outlast.a2a")

OWNER_STATE = "outlast.owner"
"""``ServerCallContext.state`` key of the caller's owner id (set from the API key)."""
DEFAULT_PAGE_SIZE = 50
FINISHED_TASKS = 1024
"""Finished tasks whose JSON ``GetTask`` keeps (a finished task no longer changes)."""
MAX_CONTEXT_ID = 256
_TEXT_MODES = frozenset({"text/plain", "text/*", "*/*", "application/json"})
_FINAL_STATE_NAMES = frozenset(TaskState.Name(state) for state in TERMINAL_STATES)
_CANCELED = TaskState.Name(TaskState.TASK_STATE_CANCELED)


def owner_of(context: ServerCallContext) -> str:
    owner = context.state.get(OWNER_STATE)
    if not isinstance(owner, str):  # only reachable if the routes are mounted without auth
        raise InternalError(message="The request has no caller identity.")
    return owner


@dataclass(slots=True)
class _Send:
    """A checked ``SendMessage``: nothing is stored until all of it is valid."""

    spec: RunSpec | None
    """``None`` for a message that steers a working task (no run is created for it)."""
    context_id: str
    message: Message
    push: TaskPushNotificationConfig | None
    continues: TaskRow | None = None
    """The task waiting for input that this message answers (``None``: a new task)."""
    steers: TaskRow | None = None
    """The task whose working run this message steers (``spec`` is then not used)."""


class EngineRequestHandler(TurnFollowing, RequestHandler):
    """Serves every A2A method from the engine and the task index."""

    def __init__(
        self,
        engine: Engine,
        index: TaskIndex,
        push_store: PushNotificationConfigStore,
        watcher: PushWatcher,
        card: AgentCard,
        allow_private_push: bool = False,
    ) -> None:
        self.engine = engine
        self.index = index
        self.push_store = push_store
        self.watcher = watcher
        self.card = card
        self.allow_private_push = allow_private_push
        # task id -> (the stored snapshot it was made of, the task's JSON without metadata).
        self._finished: OrderedDict[str, tuple[bytes, dict[str, Any]]] = OrderedDict()
        self._sending: set[asyncio.Task[None]] = set()  # notifications no run event carries
        self.steering = TaskSteering(engine, index)

    # -- helpers ---------------------------------------------------------------------------

    async def _row(self, task_id: str, owner: str, cached: bool = False) -> TaskRow:
        if not task_id:
            row = None
        elif cached:
            row = await self.index.get_cached(task_id, owner)
        else:
            row = await self.index.get(task_id, owner)
        if row is None:
            raise TaskNotFoundError(message=f"Task {task_id!r} not found.")
        return row

    async def _record(self, row: TaskRow) -> ResponseRecord:
        try:
            return await self.engine.record(row.run, row.owner)
        except NotFound:  # deleted through the Responses API, or past retention
            await self.index.delete(row.task_id)
            raise TaskNotFoundError(message=f"Task {row.task_id!r} not found.") from None
        except EngineError as exc:
            raise from_engine(exc) from None

    async def _response(self, row: TaskRow) -> tuple[dict[str, Any], float | None]:
        """The response object of the task's current turn now and, if it has ended, when."""
        if self.engine.live(row.run, row.owner) is not None:
            try:
                body = await self.engine.get(row.run, row.owner)
            except EngineError as exc:
                raise from_engine(exc) from None
            response: dict[str, Any] = orjson.loads(body)
            await self._note(row, response)
            return response, await self._live_time(row, response)
        record = await self._record(row)
        response = orjson.loads(await self.engine.current(record))
        await self._note(row, response, record.ended_at, record.expires_at)
        return response, record.ended_at

    async def _live_time(self, row: TaskRow, response: dict[str, Any]) -> float | None:
        """The stored time of a live run's state (see :mod:`outlast.a2a.times`)."""
        if response.get("status") == "queued":
            created = response.get("created_at")
            return float(created) if isinstance(created, int | float) else None
        if response.get("status") in TERMINAL_STATUSES:
            return await RunTimes(self.index, self.engine, row.run, row.owner).ended_at()
        return await self.index.working_since(row.run)

    async def _note(
        self,
        row: TaskRow,
        response: dict[str, Any],
        ended_at: float | None = None,
        expires_at: float | None = None,
    ) -> None:
        """Refresh the index's copy of the state (what ListTasks filters on)."""
        state = TaskState.Name(response_state(response))
        # A task waiting for input is not final: a message answering it continues it.
        final = state in _FINAL_STATE_NAMES
        if row.final or (state == row.state and not final):
            return
        row.state, row.final, row.expires_at = state, final, expires_at
        row.updated_at = ended_at if ended_at is not None else time.time()
        await self.index.set_state(row.task_id, state, row.updated_at, final, expires_at)

    async def _earlier(self, row: TaskRow) -> tuple[list[Message], list[Artifact]]:
        """What a task's earlier turns add before its current run's own output: the history
        (its messages, each turn's items and the message that answered it, up to the current
        turn's message) and the artifacts of the earlier turns."""
        history = [load_message(row.message)]
        if row.run_id is None:
            return history, []
        artifacts: list[Artifact] = []
        previous = row.task_id
        for turn in await self.index.turns(row.task_id):
            try:
                record = await self.engine.record(previous, row.owner)
            except NotFound:  # an earlier turn past its retention: its output is gone
                record = None
            if record is not None:
                earlier = task_from_response(
                    orjson.loads(record.snapshot), row.context_id, task_id=row.task_id
                )
                history.extend(earlier.history)
                artifacts.extend(earlier.artifacts)
            history.extend(load_messages(turn.message))
            previous = turn.run_id
        return history, artifacts

    async def _translator(self, row: TaskRow) -> WireTranslator:
        """The translator of the events of the task's current run."""
        history, artifacts = await self._earlier(row)
        times = RunTimes(self.index, self.engine, row.run, row.owner)
        wire = WireTranslator(row.task_id, row.context_id, history, row.run, artifacts, times)
        wire.queued = await self.steering.queued_messages(row.run)
        return wire

    async def _task(self, row: TaskRow, response: dict[str, Any], at: float | None) -> Task:
        history, artifacts = await self._earlier(row)
        task = task_from_response(response, row.context_id, history, at, row.task_id, artifacts)
        if row.state == _CANCELED and pending_call(response) is not None:
            # Canceled while it waited for input (on_cancel_task): the index holds that state.
            task.status.Clear()
            task.status.state = TaskState.TASK_STATE_CANCELED
            task.status.timestamp.FromNanoseconds(int(row.updated_at * 1e9))
        elif row.final and steered(response):
            # Steered, but its successor could not be created (a2a/steering.py): it ended here.
            task.status.Clear()
            task.status.state = TaskState.TASK_STATE_FAILED
            task.status.timestamp.FromNanoseconds(int(row.updated_at * 1e9))
            task.status.message.CopyFrom(
                Message(
                    message_id=f"{row.task_id}-status",
                    role=Role.ROLE_AGENT,
                    task_id=row.task_id,
                    context_id=row.context_id,
                    parts=[Part(text="The steering input could not be applied: the task's "
                                "next turn could not be created.")],
                )
            )  # fmt: skip
        if task.status.state not in TERMINAL_STATES:
            # Steering messages accepted for the current run: a message received is in the
            # history (the input of a run that failed or was cancelled was not applied).
            task.history.extend(await self.steering.queued_messages(row.run))
        return task

    # -- sending -----------------------------------------------------------------------------

    async def _check_send(self, params: SendMessageRequest, owner: str) -> _Send:
        """Validate a send and resolve its context; raises the spec's errors, stores nothing."""
        validate_proto_required_fields(params)
        config = params.configuration
        validate_history_length(config)
        message = params.message
        if message.role != Role.ROLE_USER:
            raise InvalidParamsError(message="message.role must be ROLE_USER.")
        modes = list(config.accepted_output_modes)
        if modes and not _TEXT_MODES.intersection(modes):
            raise ContentTypeNotSupportedError(
                message=f"This agent answers in text/plain and application/json, not in any of "
                f"{', '.join(modes)}."
            )
        refused = unaccepted_part(message, self.card.default_input_modes)
        if refused is not None:
            position, media_type = refused
            raise ContentTypeNotSupportedError(
                message=f"message.parts[{position}] is {media_type}, which this agent does not "
                f"accept (it accepts {', '.join(self.card.default_input_modes)})."
            )
        push = None
        if config.HasField("task_push_notification_config"):
            push = config.task_push_notification_config
        if message.task_id:
            return await self._check_answer(params, owner, push)
        context_id = message.context_id
        if not context_id and message.reference_task_ids:
            context_id = (await self._row(message.reference_task_ids[0], owner)).context_id
        if len(context_id) > MAX_CONTEXT_ID or not context_id.isprintable():
            raise InvalidParamsError(
                message=f"message.context_id must be printable and at most {MAX_CONTEXT_ID} "
                "characters."
            )
        previous = await self._previous(owner, context_id) if context_id else None
        spec = run_spec(params, message, previous)
        if push is not None:
            await self._check_push_url(push.url)
        return _Send(spec, context_id or str(uuid.uuid4()), message, push)

    async def _check_answer(
        self, params: SendMessageRequest, owner: str, push: TaskPushNotificationConfig | None
    ) -> _Send:
        """A message to an existing task: accepted only while the task waits for input
        (``INPUT_REQUIRED``); it answers the task's pending call and continues the task."""
        message = params.message
        row, record, response = await self._current(await self._row(message.task_id, owner))
        call = pending_call(response)
        if call is not None and row.state == _CANCELED:
            raise UnsupportedOperationError(
                message=f"Task {row.task_id} was canceled while it waited for input and accepts "
                "no more messages."
            )
        if call is None and record.status in TERMINAL_STATUSES:
            raise UnsupportedOperationError(
                message=f"Task {row.task_id} is in a terminal state "
                f"({TaskState.Name(task_state(record.status))}) and accepts no more "
                "messages; send the next message with its contextId (and no taskId) to "
                "continue."
            )
        if message.context_id and message.context_id != row.context_id:
            raise InvalidParamsError(
                message=f"Task {row.task_id} is in context {row.context_id}, not "
                f"{message.context_id}."
            )
        if call is None:
            # The task is working: the message steers its run (a2a/steering.py).
            if push is not None:
                await self._check_push_url(push.url)
            return _Send(None, row.context_id, message, push, steers=row)
        spec = answer_spec(params, row.run, str(call.get("call_id", "")), answer_text(message))
        if push is not None:
            await self._check_push_url(push.url)
        return _Send(spec, row.context_id, message, push, continues=row)

    async def _previous(self, owner: str, context_id: str) -> str | None:
        """The task a message in ``context_id`` continues: the context's newest one."""
        latest = await self.index.latest_in_context(owner, context_id)
        if latest is None:
            return None
        try:
            record = await self.engine.record(latest.run, owner)
        except NotFound:
            return None  # deleted or expired: the conversation starts afresh after it
        if record.status not in TERMINAL_STATUSES or steered(orjson.loads(record.snapshot)):
            raise UnsupportedOperationError(
                message=f"Task {latest.task_id} of context {context_id} is still running; wait "
                "for it (or cancel it) before sending the next message in this context."
            )
        return latest.run

    async def _check_push_url(self, url: str) -> None:
        if not await push_url_allowed(url, self.allow_private_push):
            raise InvalidParamsError(
                message=f"Push notification URL refused: {url!r} must be http(s) and resolve to "
                "public addresses only (loopback and private ranges are refused)."
            )

    async def _start(
        self, params: SendMessageRequest, context: ServerCallContext, stream: bool
    ) -> tuple[RunHandle | None, TaskRow, Message]:
        """Create the run and index it as a task (with its push config, if any); or, for a
        message to a working task, steer its run (no run is created: ``None``)."""
        owner = owner_of(context)
        send = await self._check_send(params, owner)
        for _ in range(3):
            if send.steers is None:
                break
            try:
                return None, await self._steer(send, context), send.message
            except RunEnded:
                # It ended meanwhile: it may now wait for input (the message answers it), or
                # have ended (the message is refused), once its end is stored.
                live = self.engine.live(send.steers.run, owner)
                if live is not None:
                    await live.done.wait()
                send = await self._check_send(params, owner)
        if send.steers is not None or send.spec is None:
            raise UnsupportedOperationError(
                message="The task is ending and accepts no more messages."
            )
        try:
            run = await self.engine.create(send.spec, owner, subscribe=stream)
        except EngineError as exc:
            raise from_engine(exc) from None
        message = Message()
        message.CopyFrom(send.message)
        if send.continues is not None:
            return run, await self._continue(send, run, message, context), message
        message.task_id, message.context_id = run.id, send.context_id
        now = time.time()
        row = TaskRow(
            task_id=run.id,
            owner=owner,
            context_id=send.context_id,
            created_at=now,
            message=stored_message(message),
            state=TaskState.Name(TaskState.TASK_STATE_SUBMITTED),
            updated_at=now,
            push_after=-1 if send.push is not None else None,
        )
        try:
            await self.index.add(row)
            if send.push is not None:
                await self.push_store.set_info(run.id, send.push, context)
                await self.watcher.watch(row)
        except Exception:
            log.exception("%s: could not index the task; cancelling its run", run.id)
            self.engine.release(run)
            with contextlib.suppress(Exception):
                await self.engine.cancel(run.id, owner)
            raise InternalError(message="The task could not be stored.") from None
        log.info("%s: A2A task in context %s", run.id, send.context_id)
        return run, row, message

    async def _continue(
        self, send: _Send, run: RunHandle, message: Message, context: ServerCallContext
    ) -> TaskRow:
        """Make ``run`` (answering the task's question) the current turn of the task."""
        row = send.continues
        assert row is not None
        message.task_id, message.context_id = row.task_id, row.context_id
        try:
            await self.steering.add_answer_turn(row, run.id, message)
            if send.push is not None:
                await self.push_store.set_info(row.task_id, send.push, context)
            if send.push is not None or await self.push_store.get_info(row.task_id, context):
                # The task's configs hear of the new turn's states too, from its first.
                row.push_after = -1
                await self.index.set_push_after(row.task_id, -1)
                await self.watcher.watch(row)
        except Exception:
            log.exception("%s: could not index the turn %s; cancelling it", row.task_id, run.id)
            self.engine.release(run)
            with contextlib.suppress(Exception):
                await self.engine.cancel(run.id, row.owner)
            raise InternalError(message="The task could not be stored.") from None
        log.info("%s: A2A task continued by %s (its answer)", row.task_id, run.id)
        return row

    async def _steer(self, send: _Send, context: ServerCallContext) -> TaskRow:
        """Steer the working run of the task ``send.steers`` with the message."""
        row = send.steers
        assert row is not None
        message = Message()
        message.CopyFrom(send.message)
        message.task_id, message.context_id = row.task_id, row.context_id
        await self.steering.steer(row, message)
        if send.push is not None:
            await self.push_store.set_info(row.task_id, send.push, context)
            if row.push_after is None:
                row.push_after = -1
                await self.index.set_push_after(row.task_id, -1)
            await self.watcher.watch(row)
        return row

    async def on_message_send(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> Task | Message:
        run, row, _ = await self._start(params, context, stream=False)
        if run is None:  # it steered the task's working run
            if not params.configuration.return_immediately:
                row = await self._until_interrupted(row)
            task = await self._task(row, *await self._response(row))
            return apply_history_length(task, params.configuration)
        if params.configuration.return_immediately:
            created = orjson.loads(run.created)
            task = await self._task(row, created, await self._live_time(row, created))
        else:
            await self.engine.wait(run)
            response, at = await self._response(row)
            reply = self._direct_reply(row, response)
            if reply is not None:
                return reply
            task = await self._task(row, response, at)
        return apply_history_length(task, params.configuration)

    def _direct_reply(self, row: TaskRow, response: dict[str, Any]) -> Message | None:
        """The agent's answer as a direct message, when the agent was declared
        :func:`outlast.message_reply` and its run completed with one text message only (and the
        task is the first turn of its own: an answer to a question continues a task)."""
        if not replies_with_message(self.engine.agent) or row.run_id is not None:
            return None
        output = response.get("output") or []
        if response.get("status") != "completed" or len(output) != 1:
            return None
        item = output[0]
        if item.get("type") != "message" or item.get("role") != "assistant":
            return None
        return Message(
            message_id=str(item["id"]),
            role=Role.ROLE_AGENT,
            context_id=row.context_id,
            parts=[Part(text=message_text(item))],
        )

    async def message_frames(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[list[Frame]]:
        """``SendStreamingMessage``: the task's A2A events, a list per batch of stored events (an
        empty list for a quiet spell)."""
        # An agent that may answer with a direct message: a stream that is a message holds that
        # message alone (A2A 1.0 §3.1.2), which is known only at the run's end, so the run is
        # waited for first; a task is then streamed from its first event.
        whole = replies_with_message(self.engine.agent) and not params.message.task_id
        run, row, _ = await self._start(params, context, stream=not whole)
        config = params.configuration
        if run is None:  # it steered the task's working run: the task from now on
            row, record, snapshot = await self._current(row)
            async for frames in self._turn_frames(row, record, snapshot, None):
                yield frames
            return
        events: AsyncIterator[list[Event]]
        if whole:
            ending = asyncio.ensure_future(self.engine.wait(run))
            while not ending.done():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(ending), QUIET_SPELL)
                if not ending.done():
                    yield []  # a quiet spell: the stream's keep-alive
            response, _ = await self._response(row)
            reply = self._direct_reply(row, response)
            if reply is not None:
                yield [(-1, exact_dumps({"message": proto_dict(reply)}))]
                return
            try:
                events = await self.engine.stream(row.run, row.owner, -1)
            except EngineError as exc:
                raise from_engine(exc) from None
        else:
            events = self.engine.stream_run(run)
        wire = await self._translator(row)
        cut = config.HasField("history_length")

        def cut_task(event: Event) -> bytes | None:
            """The event's A2A event, the task cut to the history length asked for."""
            if event.type != "response.created":
                return wire.feed(event)
            response = orjson.loads(event.data)["response"]
            task = apply_history_length(wire.task_object(response), config)
            return wire.task(response, event.seq, task)

        end = EndWatch()
        async with contextlib.aclosing(end.watch(events)) as batches:
            async for batch in batches:
                await wire.ready(batch)
                if cut and any(event.type == "response.created" for event in batch):
                    frames = [(event.seq, body) for event in batch if (body := cut_task(event))]
                else:
                    feed = wire.feed
                    frames = [(event.seq, body) for event in batch if (body := feed(event))]
                if frames or not batch:
                    yield frames
        if end.steered:
            async for frames in self._steered_on(row):
                yield frames

    async def on_message_send_stream(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Any]:
        async for event in _stream_events(self.message_frames(params, context)):
            yield event

    # -- reading -----------------------------------------------------------------------------

    async def on_get_task(self, params: GetTaskRequest, context: ServerCallContext) -> Task | None:
        validate_proto_required_fields(params)
        validate_history_length(params)
        row = await self._row(params.id, owner_of(context))
        task = await self._task(row, *await self._response(row))
        return apply_history_length(task, params)

    async def task_json(self, params: GetTaskRequest, context: ServerCallContext) -> dict[str, Any]:
        """``GetTask`` as its JSON result, which the transports serve without the SDK's protobuf
        round trip; a finished task's is kept, as the engine keeps its response."""
        if not params.id:  # the only required field: the SDK's check says so in its own words
            validate_proto_required_fields(params)
        validate_history_length(params)
        owner = owner_of(context)
        row = await self._row(params.id, owner, cached=True)
        if self.engine.live(row.run, row.owner) is not None:
            body = proto_dict(await self._task(row, *await self._response(row)))
            return cut_history(body, params)
        record = await self._record(row)
        kept = self._finished.get(row.task_id)
        if kept is not None and kept[0] is record.snapshot:
            self._finished.move_to_end(row.task_id)
            return cut_history(kept[1], params)
        # Running on another replica: its snapshot with the events committed since.
        response = orjson.loads(await self.engine.current(record))
        if pending_call(response) is not None:
            # Waiting for input, as far as the cached row knows: a message may have answered it
            # since (here or on another replica), making another run its current turn.
            fresh = await self._row(params.id, owner)
            if fresh.run != row.run:
                body = proto_dict(await self._task(fresh, *await self._response(fresh)))
                return cut_history(body, params)
            row = fresh  # it may have been canceled meanwhile, which only the table says
        await self._note(row, response, record.ended_at, record.expires_at)
        body = proto_dict(await self._task(row, response, record.ended_at))
        if row.final:
            self._finished[row.task_id] = (record.snapshot, body)
            if len(self._finished) > FINISHED_TASKS:
                self._finished.popitem(last=False)
        return cut_history(body, params)

    async def on_list_tasks(
        self, params: ListTasksRequest, context: ServerCallContext
    ) -> ListTasksResponse:
        validate_proto_required_fields(params)
        validate_history_length(params)
        if params.HasField("page_size"):
            validate_page_size(params.page_size)
        owner = owner_of(context)
        page_size = params.page_size or DEFAULT_PAGE_SIZE
        before = decode_cursor(params.page_token) if params.page_token else None
        # States of unfinished tasks may have moved on (or ended in a crash): refresh them from
        # the engine first, so that the status filter and the total are right.
        for row in await self.index.unfinished(owner):
            with contextlib.suppress(TaskNotFoundError):
                await self._response(row)
        await self.index.purge_expired()
        after = None
        if params.HasField("status_timestamp_after"):
            after = params.status_timestamp_after.ToNanoseconds() / 1e9
        page = await self.index.page(
            owner,
            context_id=params.context_id or None,
            state=TaskState.Name(params.status) if params.status else None,
            updated_after=after,
            before=before,
            limit=page_size + 1,
        )
        result = ListTasksResponse(page_size=page_size, total_size=page.total)
        for row in page.rows[:page_size]:
            try:
                task = await self._task(row, *await self._response(row))
            except TaskNotFoundError:
                continue
            if not params.include_artifacts:
                task.ClearField("artifacts")
            result.tasks.append(apply_history_length(task, params))
        if len(page.rows) > page_size:
            result.next_page_token = encode_cursor(page.rows[page_size - 1])
        return result

    async def subscribe_frames(
        self, params: SubscribeToTaskRequest, context: ServerCallContext
    ) -> AsyncGenerator[list[Frame]]:
        """``SubscribeToTask``: the task's A2A events, a list per batch of stored events (an
        empty list for a quiet spell)."""
        validate_proto_required_fields(params)
        owner = owner_of(context)
        row = await self._row(params.id, owner)
        cursor = last_event_id(context)
        if cursor is None:
            row, record, snapshot = await self._current(row)
        else:  # the events after the cursor are the current turn's, even a steered one's
            record = await self._record(row)
            snapshot = orjson.loads(record.snapshot)
        waiting = pending_call(snapshot) is not None and row.state != _CANCELED
        if cursor is None and record.status in TERMINAL_STATUSES and not waiting:
            state = (
                _CANCELED if row.state == _CANCELED else TaskState.Name(task_state(record.status))
            )
            raise UnsupportedOperationError(
                message=f"Task {row.task_id} is in terminal state {state}; get it with GetTask."
            )
        # A task waiting for input is interrupted, not ended: its subscribers get the task
        # (INPUT_REQUIRED), then, as a2a-sdk's own server does, the turn its answer starts.
        async for frames in self._turn_frames(row, record, snapshot, cursor):
            yield frames
        if cursor is None and waiting:
            async for frames in self._after_question(row):
                yield frames

    async def on_subscribe_to_task(
        self, params: SubscribeToTaskRequest, context: ServerCallContext
    ) -> AsyncGenerator[Any]:
        async for event in _stream_events(self.subscribe_frames(params, context)):
            yield event

    # -- controlling -------------------------------------------------------------------------

    async def on_cancel_task(
        self, params: CancelTaskRequest, context: ServerCallContext
    ) -> Task | None:
        validate_proto_required_fields(params)
        owner = owner_of(context)
        row = await self._row(params.id, owner)
        record = await self._record(row)
        snapshot = orjson.loads(record.snapshot)
        state = _CANCELED if row.state == _CANCELED else TaskState.Name(response_state(snapshot))
        not_cancelable = TaskNotCancelableError(
            message=f"Task {row.task_id} has already ended ({state}) and cannot be canceled."
        )
        if pending_call(snapshot) is not None and row.state != _CANCELED:
            # Waiting for input is not an end: the task is canceled, in the index (its run has
            # ended, so there is nothing to stop), and its question can no longer be answered.
            canceled = TaskState.TASK_STATE_CANCELED
            row.state, row.final, row.updated_at = _CANCELED, True, time.time()
            row.expires_at = record.expires_at
            await self.index.set_state(row.task_id, _CANCELED, row.updated_at, True, row.expires_at)
            task = await self._task(row, snapshot, row.updated_at)
            assert task.status.state == canceled
            if await self.push_store.get_info(row.task_id, context):
                # No run event says so (the run had ended): the task's configs are told here,
                # in the background, with the sender's retries.
                update = TaskStatusUpdateEvent(
                    task_id=row.task_id, context_id=row.context_id, status=task.status
                )
                sending = asyncio.create_task(
                    self.watcher.sender.send_notification(row.task_id, update)
                )
                self._sending.add(sending)
                sending.add_done_callback(self._sending.discard)
            return task
        if record.status in TERMINAL_STATUSES:
            raise not_cancelable
        try:
            response = orjson.loads(await self.engine.cancel(row.run, owner))
        except EngineError as exc:
            raise from_engine(exc) from None
        if response["status"] in TERMINAL_STATUSES and response["status"] != "cancelled":
            raise not_cancelable  # it ended by itself first
        task = await self._task(row, *await self._response(row))
        return task

    # -- push notification configs -------------------------------------------------------

    async def on_create_task_push_notification_config(
        self, params: TaskPushNotificationConfig, context: ServerCallContext
    ) -> TaskPushNotificationConfig:
        validate_proto_required_fields(params)
        row = await self._row(params.task_id, owner_of(context))
        await self._check_push_url(params.url)
        stored = await self.push_store.set_info(row.task_id, params, context)
        if row.push_after is None:
            record = await self._record(row)
            if record.status not in TERMINAL_STATUSES:
                # Notify the state changes from now on: those after the current snapshot.
                row.push_after = record.snapshot_seq
                await self.index.set_push_after(row.task_id, row.push_after)
        await self.watcher.watch(row)
        return stored or normalize_push_notification_config(row.task_id, params)

    async def on_get_task_push_notification_config(
        self, params: GetTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> TaskPushNotificationConfig:
        validate_proto_required_fields(params)
        row = await self._row(params.task_id, owner_of(context))
        for config in await self.push_store.get_info(row.task_id, context):
            if config.id == params.id:
                return config
        raise TaskNotFoundError(
            message=f"Task {row.task_id} has no push notification config {params.id!r}."
        )

    async def on_list_task_push_notification_configs(
        self, params: ListTaskPushNotificationConfigsRequest, context: ServerCallContext
    ) -> ListTaskPushNotificationConfigsResponse:
        validate_proto_required_fields(params)
        row = await self._row(params.task_id, owner_of(context))
        configs = await self.push_store.get_info(row.task_id, context)
        return ListTaskPushNotificationConfigsResponse(configs=configs)

    async def on_delete_task_push_notification_config(
        self, params: DeleteTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> None:
        validate_proto_required_fields(params)
        row = await self._row(params.task_id, owner_of(context))
        await self.push_store.delete_info(row.task_id, context, params.id or None)

    async def on_get_extended_agent_card(
        self, params: GetExtendedAgentCardRequest, context: ServerCallContext
    ) -> AgentCard:
        raise UnsupportedOperationError(message="This agent has no extended agent card.")


async def _stream_events(frames_of: AsyncGenerator[list[Frame]]) -> AsyncGenerator[Any]:
    """The SDK's stream events of a stream of frames (the transports that take objects)."""
    async with contextlib.aclosing(frames_of) as batches:
        async for frames in batches:
            for _, body in frames:
                yield stream_event(body)
