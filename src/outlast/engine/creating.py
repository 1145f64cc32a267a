"""Creating a run: admission, the stored record, continuations, and steered successors.

The path from a :class:`~outlast.protocol.spec.RunSpec` to a durable response with its run queued:
the key's admission (:class:`~outlast.engine.shares.Shares`, the placement's queue counts), the
conversation it continues (:class:`~outlast.engine.chain.Chains`), the answer to a question a
paused run asked (``request.ask``: the answer is claimed in that run's journal, once), steering
input left pending on the previous response, and the insert whose commit publishes the first
events. The engine's facade calls :meth:`Creator.create`; :class:`~outlast.engine.steering.Steering`
calls :meth:`Creator.successor` for a steered run's successor.

It is cut here, out of the facade, because this is the one path that writes a response into
existence: everything in it runs before a run exists, and nothing after creation calls back into
it (reads, cancel and delete work on what it made).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

import orjson

from outlast.agents.base import AgentRequest
from outlast.config import Settings
from outlast.engine.chain import OFF_LOOP_ITEMS, Chains, conversation_too_large
from outlast.engine.closing import Closer
from outlast.engine.compaction import conversation, stored_conversation
from outlast.engine.errors import InvalidRequest, ShuttingDown
from outlast.engine.executor import Executor
from outlast.engine.hub import Hub
from outlast.engine.journal import ANSWER_KEY, ANSWERED, Replay, pending_ask
from outlast.engine.placement import Placement
from outlast.engine.run import RunHandle, StopReason, request_json
from outlast.engine.shares import Shares
from outlast.engine.steering import Steering
from outlast.engine.streams import StreamCounts
from outlast.observe.base import Observer
from outlast.protocol.events import TERMINAL_STATUSES
from outlast.protocol.ids import new_id
from outlast.protocol.jsonbytes import dumps
from outlast.protocol.normalizer import Normalizer
from outlast.protocol.spec import RunSpec, new_response_fields
from outlast.protocol.state import ResponseState
from outlast.store.base import ResponseRecord, StepRecord, Store, WriteBatch, encode_input
from outlast.store.writer import GroupCommitWriter

log = logging.getLogger("outlast.runs")


class Creator:
    """Creates responses and queues their runs (see the module's docstring)."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        writer: GroupCommitWriter,
        hub: Hub,
        observe: Observer,
        chains: Chains,
        closer: Closer,
        executor: Executor,
        placement: Placement,
        shares: Shares,
        streams: StreamCounts,
        steering: Steering,
    ) -> None:
        self.settings = settings
        self.store = store
        self.writer = writer
        self.hub = hub
        self.observe = observe
        self.chains = chains
        self.closer = closer
        self.executor = executor
        self.placement = placement
        self.shares = shares
        self.streams = streams
        self.steering = steering

    async def create(
        self,
        spec: RunSpec,
        owner: str,
        *,
        subscribe: bool = False,
        history: list[dict[str, Any]] | None = None,
    ) -> RunHandle:
        """:meth:`Engine.create <outlast.engine.engine.Engine.create>` (its docstring says what
        ``subscribe`` and ``history`` do): steering input left pending on
        ``spec.previous_response_id`` goes first in the input; this response's creation commits
        it."""
        previous = spec.previous_response_id
        steers = self.steering.take(previous) if previous is not None else []
        if not steers:
            return await self._create(spec, owner, subscribe, history)
        queued = [item for steer in steers for item in steer.input]
        try:
            spec = dataclasses.replace(spec, input_items=[*queued, *spec.input_items])
            handle = await self._create(spec, owner, subscribe, history)
        except BaseException:
            assert previous is not None
            self.steering.put_back(previous, steers)
            raise
        await self.steering.committed(steers)
        return handle

    async def _create(
        self,
        spec: RunSpec,
        owner: str,
        subscribe: bool,
        history: list[dict[str, Any]] | None,
    ) -> RunHandle:
        if not self.executor.accepting:
            raise ShuttingDown
        if subscribe:
            self.streams.check(owner)
        executor = self.executor
        local = self.placement.runs_here(executor.running, owner)
        self.shares.take_rate(owner)
        counts = await self.placement.waiting(owner, local, executor.queue_counts(owner))
        self.shares.admit(owner, counts)
        # Refused (a corrupt compaction item) before anything is written for it.
        new_input = conversation(spec.input_items, self.settings.max_conversation_bytes)
        response_id = new_id("resp")
        continued: list[StepRecord] = []
        # Each item serialised once, for the input column and its rows; off the loop when long.
        if len(spec.input_items) > OFF_LOOP_ITEMS:
            stored_input, input_rows = await asyncio.to_thread(encode_input, spec.input_items)
        else:
            stored_input, input_rows = encode_input(spec.input_items)
        limit = self.settings.max_conversation_bytes
        if len(stored_input) > limit:
            raise conversation_too_large(limit, "input")
        if spec.previous_response_id is not None and history is None:
            history = await self.chains.history(
                spec.previous_response_id, owner, limit, len(stored_input)
            )
            continued = await self._continuation(spec, spec.previous_response_id, response_id)
        history = history or []
        status = "queued" if spec.background else "in_progress"
        state = ResponseState(new_response_fields(response_id, spec, status))
        normalizer = Normalizer(state)
        events = normalizer.created()
        agent_request = AgentRequest(
            response_id=response_id,
            model=spec.model,
            input=stored_conversation(history) + new_input,
            instructions=spec.instructions,
            metadata=spec.metadata,
            tools=spec.tools,
            previous_response_id=spec.previous_response_id,
            background=spec.background,
            params={**spec.options, **spec.extra},
        )
        run = executor.new_run(normalizer, owner, agent_request, spec.store)
        run.max_attempts = self.closer.max_attempts
        run.remote = not local
        steps: list[StepRecord] = []
        if continued:
            # It goes on from the paused run's journal, in this response's log (which holds none
            # of the replayed outputs: they are the previous response's).
            seq = events[-1].seq + 1
            steps = [StepRecord(s.position, s.name, s.result, seq) for s in continued]
            run.steps, run.replay = steps, Replay(normalizer, normalizer)
        record = ResponseRecord(
            id=response_id,
            owner=owner,
            status=status,
            background=spec.background,
            stream=spec.stream,
            store=spec.store,
            created_at=time.time(),
            previous_response_id=spec.previous_response_id,
            input=stored_input,
            input_rows=input_rows,
            snapshot=dumps(state.to_dict()),
            snapshot_seq=events[-1].seq,
            request=request_json(agent_request, self.closer.max_attempts),
            worker_id=self.placement.worker_id if local else None,
        )
        # Queue the run before waiting for the insert to commit: its first events then share the
        # insert's transaction (one fsync before the first delta instead of two). Nothing is
        # delivered before it commits, and the caller answers only after it has.
        subscription = self.hub.subscribe(response_id) if subscribe else None
        # In the creating request's task: the run's span links to this request's trace.
        self.observe.run_created(run.info, local)
        insert = self.writer.insert(
            record, events, on_commit=lambda: self.hub.publish(response_id, events), steps=steps
        )
        # Logged before the run can start, so that "created" comes before its "in_progress"
        # (a store that then fails to commit it says so in a line of its own).
        where = "" if local else ", for another replica"
        log.info("%s created, %s (model=%s)%s", response_id, status, spec.model, where)
        if local:
            executor.submit(run)
        try:
            await insert
        except Exception:
            if local:
                executor.stop(run, StopReason.STORE_FAILED)
            if subscription is not None:
                self.hub.unsubscribe(subscription)
            raise
        # The object as created goes to the handle only (the run does not keep it): what the
        # create request answers, even if the run has started by the time it does.
        return RunHandle(response_id, record.snapshot, run.background, run, subscription)

    async def _continuation(
        self, spec: RunSpec, previous_id: str, response_id: str
    ) -> list[StepRecord]:
        """The journal a response continuing a run paused by ``request.ask`` starts with: the
        paused run's, its question answered by the ``function_call_output`` in ``spec``'s input
        ([] when ``spec`` answers no pending question). A question is answered once."""
        steps = await self.store.read_steps(previous_id)
        if not steps:
            return []
        last = steps[-1]
        if last.name == ANSWERED and len(steps) >= 2:
            asked = pending_ask(steps[-2])
            if asked is not None and _answer(spec, asked[0]) is not None:
                by = orjson.loads(last.result).get("by")
                raise InvalidRequest(
                    f"The question '{steps[-2].name}' (call_id '{asked[0]}') of response "
                    f"'{previous_id}' was already answered, by response '{by}'.",
                    field="input",
                )
            return []
        asked = pending_ask(last)
        if asked is None:
            return []
        call_id = asked[0]
        answer = _answer(spec, call_id)
        if answer is None:
            return []
        if not isinstance(answer, str):
            raise InvalidRequest(
                f"The answer to '{last.name}' (the function_call_output for call_id "
                f"'{call_id}') must be a string, not {type(answer).__name__}.",
                field="input",
            )
        # Claim the answer in the paused run's journal (an idempotent insert at the next
        # position: of two continuations at once, the one whose claim is stored wins).
        claim = StepRecord(last.position + 1, ANSWERED, dumps({"by": response_id}), last.seq)
        await self.store.write(WriteBatch(steps=[(previous_id, [claim])]))
        stored = await self.store.read_steps(previous_id)
        if stored[-1].name != ANSWERED or orjson.loads(stored[-1].result).get("by") != response_id:
            raise InvalidRequest(
                f"The question '{last.name}' of response '{previous_id}' was already answered.",
                field="input",
            )
        answered = StepRecord(last.position, last.name, dumps({ANSWER_KEY: answer}), 0)
        return [*steps[:-1], answered]

    async def successor(
        self, spec: RunSpec, owner: str, history: list[dict[str, Any]], subscribe: bool
    ) -> RunHandle:
        """A steered run's successor (:attr:`Steering.create <outlast.engine.steering.Steering.create>`)."""
        return await self.create(spec, owner, subscribe=subscribe, history=history)

    async def steered(self, response_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """A steered response's object and conversation, for its successor after a restart
        (``None`` while it is still unfinished)."""
        record = await self.store.get_response(response_id, None)
        if record is None:
            return {"id": response_id, "status": "deleted"}, []
        if record.status not in TERMINAL_STATUSES:
            return None
        return orjson.loads(record.snapshot), await self.chains.chain(record, record.owner)


def _answer(spec: RunSpec, call_id: str) -> Any:
    """The ``output`` of the ``function_call_output`` for ``call_id`` in the input, if any."""
    for item in spec.input_items:
        if item.get("type") == "function_call_output" and item.get("call_id") == call_id:
            return item.get("output")
    return None
