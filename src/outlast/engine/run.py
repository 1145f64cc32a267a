"""A run of this process and the vocabulary of its end.

- :class:`Run`, the mutable state the engine keeps for a run that is queued or executing here, and
  :class:`RunHandle`, the frozen view transports get back from :meth:`Engine.create`.
- :class:`StopReason`, why a run was stopped before its agent finished, and :func:`stop_outcome`,
  the table from a reason to the :class:`Outcome` of the attempt: it ends the response
  (:attr:`Ending.END`, with a terminal status), hands it back to the queue for another attempt
  (:attr:`Ending.REQUEUE`), or leaves its log untouched here (:attr:`Ending.RELEASE`: another
  replica holds it, or it is ended from what was stored once the store can be written again).
- :class:`RunTable`, the runs of this process and those being started or ended here from the store.

A process may hold ten thousand runs at once, so what a :class:`Run` keeps is counted: no
closures or partials per run where the run itself can be the callback's argument (it is the
attempt its journal calls back, through the executor, :class:`RunHost`), and :class:`Done`
instead of an :class:`asyncio.Event` (whose deque costs more than the rest of the flag).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from outlast.agents.base import AgentRequest
from outlast.engine.hub import Subscription
from outlast.engine.journal import Replay, RunJournal
from outlast.observe.base import RunInfo
from outlast.protocol.events import Event
from outlast.protocol.jsonbytes import dumps
from outlast.protocol.normalizer import Normalizer
from outlast.protocol.state import ResponseState
from outlast.store.base import ResponseRecord, StepRecord

SERVER_STOPPED_RUNNING = "The server stopped while this response was running; it did not finish."
SERVER_STOPPED_QUEUED = "The server stopped before this response started; it was not run."
SHUTDOWN_RUNNING = "The server shut down before this response finished."
SHUTDOWN_QUEUED = "The server shut down before this response started."
WORKER_STOPPED = "The worker executing this run stopped before it finished."
STORE_LOST = "The run was stopped because its events could not be stored; it did not finish."
STORE_FAILED = "The response could not be stored."


def server_error(message: str) -> dict[str, str]:
    """The ``error`` object of a response that failed on the server's side."""
    return {"code": "server_error", "message": message}


class StopReason(enum.Enum):
    """Why a run was stopped before its agent finished."""

    CANCELLED = "cancelled"
    """A client cancelled the background response (or deleted it, or another replica asked)."""
    CLIENT_DISCONNECTED = "client_disconnected"
    """The client of a foreground response went away (OpenAI's rule: it is cancelled)."""
    TIMEOUT = "timeout"
    """The run exceeded the run timeout."""
    STORE_FAILED = "store_failed"
    """The response's insert failed: nothing of it may be served."""
    SHUTDOWN = "shutdown"
    """The server shut down (or the task was cancelled from outside) before the run finished."""
    HANDOFF = "handoff"
    """The server shut down and another replica of a shared store may retry the run."""
    LOST = "lost"
    """This replica may no longer write the run's events (fenced, lease lost, a write failed)."""
    SUSPEND = "suspend"
    """The server shut down and the run has a journal: another replica resumes it from there."""
    LEAVE = "leave"
    """The server shut down and the run has a journal: the next start resumes it (one process)."""
    SLEEP = "sleep"
    """The agent sleeps durably (:meth:`AgentRequest.sleep`): the run leaves its task and slot."""
    ASK = "ask"
    """The agent pauses for input (:meth:`AgentRequest.ask`): the response completes with the
    pending call; a response continuing it carries the answer."""
    STEERED = "steered"
    """Steering input is queued and the run stands at a safe output boundary: the response ends
    ``incomplete`` (reason ``steered``) and a successor carries the input
    (:mod:`outlast.engine.steering`)."""


class Ending(enum.Enum):
    """What the close of an attempt does to the response."""

    END = "end"
    """A terminal event: the response ends with :attr:`Outcome.status`."""
    REQUEUE = "requeue"
    """The attempt's open items are closed and the run goes back to the queue for another."""
    RELEASE = "release"
    """Nothing is written here: another replica holds the run, or its log is ended later."""
    RESUME = "resume"
    """The run goes back to the queue to be resumed from its journal: nothing open is closed,
    the resume is counted (past ``--max-resumes`` the run ends ``failed`` instead)."""
    SLEEP = "sleep"
    """The run sleeps durably: its snapshot is stored, it stays ``in_progress``, holding nothing."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an attempt ends: see :class:`Ending`; ``status`` and ``error`` for :attr:`Ending.END`."""

    ending: Ending
    status: str = ""
    error: dict[str, str] | None = None
    reason: str | None = None
    """The ``incomplete_details.reason`` of an ``incomplete`` end."""

    @classmethod
    def end(
        cls, status: str, error: dict[str, str] | None = None, reason: str | None = None
    ) -> Outcome:
        """The response ends ``status`` (completed, failed, cancelled, incomplete), with
        ``error`` or an incomplete ``reason`` if any."""
        return cls(Ending.END, status, error, reason)

    @property
    def label(self) -> str:
        """The word the run's last log line uses for it."""
        if self.ending is Ending.END:
            return self.status
        return {Ending.REQUEUE: "requeue", Ending.RESUME: "to be resumed",
                Ending.SLEEP: "sleeping"}.get(self.ending, "stopped here")  # fmt: skip


REQUEUE = Outcome(Ending.REQUEUE)
RELEASE = Outcome(Ending.RELEASE)
RESUME = Outcome(Ending.RESUME)
SLEEP = Outcome(Ending.SLEEP)
CANCELLED = Outcome.end("cancelled")


def stop_outcome(reason: StopReason, *, started: bool, run_timeout: float) -> Outcome:
    """The outcome of an attempt stopped for ``reason`` (``started``: its agent had begun)."""
    if reason is StopReason.TIMEOUT:
        limit = f"{run_timeout:g}"
        message = f"The run exceeded the run timeout of {limit} seconds and was stopped."
        return Outcome.end("failed", server_error(message))
    if reason is StopReason.STORE_FAILED:
        return Outcome.end("failed", server_error(STORE_FAILED))
    if reason is StopReason.SHUTDOWN:
        return Outcome.end("failed", server_error(SHUTDOWN_RUNNING if started else SHUTDOWN_QUEUED))
    if reason is StopReason.HANDOFF:
        return REQUEUE
    if reason is StopReason.LOST or reason is StopReason.LEAVE:
        return RELEASE
    if reason is StopReason.SUSPEND:
        return RESUME
    if reason is StopReason.SLEEP:
        return SLEEP
    if reason is StopReason.ASK:
        return Outcome.end("completed")
    if reason is StopReason.STEERED:
        return Outcome.end("incomplete", reason="steered")
    return CANCELLED  # CANCELLED, CLIENT_DISCONNECTED


class Done:
    """That a run has ended: :class:`asyncio.Event`'s ``set``/``is_set``/``wait``, without its
    deque (a run has at most a few waiters, and usually none)."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if self._set:
            return
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> Literal[True]:
        if self._set:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            # Cancelled: no longer waiting (set() has dropped the list otherwise).
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True


class RunHost(Protocol):
    """What a run's journal calls back, for the run: the executor."""

    def emit(self, run: Run, events: list[Event]) -> None:
        """Write (and then publish) events of the run."""
        ...

    def suspend(self, run: Run, until: float) -> None:
        """The run sleeps durably until ``until``: end its attempt."""
        ...

    def asked(self, run: Run, name: str, call_id: str, payload: Any) -> None:
        """The run asks for input: end its attempt, completing with the call."""
        ...

    def write_failed(self, run: Run, exc: BaseException) -> None:
        """A write of the run's events failed for good."""
        ...


class Run:
    """A response that is queued or running on this server."""

    __slots__ = (
        "__weakref__", "agent_request", "attempt", "background", "done", "finishing", "host", "id",
        "journal", "lost", "max_attempts", "normalizer", "owner", "prelude", "question", "remote",
        "replay", "snapshot_at", "snapshot_seq", "steps", "stop_reason", "store", "task", "wake_at",
        "write_error",
    )  # fmt: skip

    def __init__(
        self,
        normalizer: Normalizer,
        owner: str,
        agent_request: AgentRequest,
        store: bool,
        attempt: int = 1,
    ) -> None:
        self.id = normalizer.state.id
        self.normalizer = normalizer
        self.owner = owner
        self.agent_request = agent_request
        self.background = agent_request.background
        self.store = store
        self.task: asyncio.Task[None] | None = None
        self.stop_reason: StopReason | None = None
        self.finishing = False
        self.done = Done()
        # When (monotonic) and at which event its snapshot was last written (Executor.emit).
        self.snapshot_at = 0.0
        self.snapshot_seq = -1
        self.attempt = attempt
        # Attempts the run may have, stored with it (request_json): the creating replica's
        # --max-attempts, honoured by whichever replica executes it. None: the local setting.
        self.max_attempts: int | None = None
        # Executed by another replica (this one only created it and waits for or streams it).
        self.remote = False
        # This replica may no longer write the run's events (fenced, or a write failed for good).
        self.lost = False
        # Set by bind(): what a failed write of this run's events does, and what the run's
        # journal calls back (see emit, suspend, ask).
        self.write_error: Callable[[BaseException], None] | None = None
        self.host: RunHost | None = None
        # Durable runs: the journal read back for a resumed attempt, its replay, the attempt's
        # journal once it executes, and when a durably sleeping run wakes.
        self.steps: list[StepRecord] = []
        self.replay: Replay | None = None
        self.journal: RunJournal | None = None
        self.wake_at: float | None = None
        # A question the agent asked (name, call_id, payload), and the events that put it in the
        # output: written with the terminal event, in one transaction.
        self.question: tuple[str, str, Any] | None = None
        self.prelude: list[Event] = []

    # -- the attempt its journal is kept for (journal.Attempt) --------------------------------

    @property
    def next_seq(self) -> int:
        """The sequence number the run's next event takes."""
        return self.normalizer.next_seq

    def emit(self, events: list[Event]) -> None:
        assert self.host is not None
        self.host.emit(self, events)

    def suspend(self, until: float) -> None:
        assert self.host is not None
        self.host.suspend(self, until)

    def ask(self, name: str, call_id: str, payload: Any) -> None:
        assert self.host is not None
        self.host.asked(self, name, call_id, payload)

    def write_failed(self, exc: BaseException) -> None:
        """What :attr:`write_error` is bound to (see :meth:`bind`)."""
        assert self.host is not None
        self.host.write_failed(self, exc)

    def bind(self, host: RunHost) -> None:
        """Called back by ``host`` from now on (its journal's calls, its failed writes)."""
        self.host = host
        # Bound once: the writer merges consecutive appends that share this very object.
        self.write_error = self.write_failed

    @property
    def durable(self) -> bool:
        """The run has journaled steps: it can be resumed instead of failed or restarted."""
        return bool(self.steps) or (self.journal is not None and self.journal.used)

    @property
    def state(self) -> ResponseState:
        return self.normalizer.state

    @property
    def info(self) -> RunInfo:
        """What the observers are told about the run."""
        fields = self.state.fields
        created = fields.get("created_at")
        return RunInfo(self.id, self.agent_request.model, self.background,
                       float(created) if created is not None else time.time(),
                       self.attempt, resumes_in(fields))  # fmt: skip


@dataclass(frozen=True, slots=True, eq=False)
class RunHandle:
    """What a transport gets back from :meth:`Engine.create`: the new response's id and object.

    ``created`` is the response object as created (JSON; status ``queued`` for a background
    response), which the create request answers with even if the run has started meanwhile.
    The run itself stays the engine's: pass the handle back to wait for it, stream it, or give it
    up (:meth:`Engine.wait`, :meth:`Engine.stream_run`, :meth:`Engine.abandon`).
    """

    id: str
    created: bytes
    background: bool
    run: Run
    subscription: Subscription | None
    """Taken before the first event was published (``create(subscribe=True)``), else None."""


class RunTable:
    """The runs of this process (queued or executing), and the ids being handled from the store.

    A run is *local* while it is in the table or being started or ended here from its stored log
    (claimed, taken over, cancelled while queued): the other replicas' events and the orphan
    reconciliation leave those alone.
    """

    def __init__(self) -> None:
        self._runs: dict[str, Run] = {}
        # How many blocks mark each run as handled here: they nest (a claimed batch is marked as
        # a whole, then each run again while it is loaded), so a run stays marked until the last.
        self._handling: Counter[str] = Counter()
        self.sleeping: Collection[str] = frozenset()
        """Runs held here that sleep durably (no task, no slot): the executor's
        :class:`~outlast.engine.sleepers.Sleepers` once there is one."""

    def add(self, run: Run) -> None:
        self._runs[run.id] = run

    def remove(self, response_id: str) -> None:
        self._runs.pop(response_id, None)

    def get(self, response_id: str) -> Run | None:
        return self._runs.get(response_id)

    def live(self, response_id: str, owner: str) -> Run | None:
        """The run of ``owner`` with this id, if it is queued or executing here."""
        run = self._runs.get(response_id)
        if run is not None and run.owner == owner:
            return run
        return None

    def is_live(self, response_id: str) -> bool:
        """The run is queued or executing here."""
        return response_id in self._runs

    def is_local(self, response_id: str) -> bool:
        """The run executes here, sleeps here, or is being started or ended here."""
        return (
            response_id in self._runs
            or response_id in self._handling
            or response_id in self.sleeping
        )

    @contextlib.contextmanager
    def handling(self, response_ids: Iterable[str]) -> Iterator[None]:
        """Mark runs as being started or ended here from the store, for the block's duration."""
        ids = list(response_ids)
        self._handling.update(ids)
        try:
            yield
        finally:
            self._handling.subtract(ids)
            for rid in ids:
                if self._handling[rid] <= 0:
                    del self._handling[rid]

    def runs(self) -> list[Run]:
        """The runs here now (a copy: the table changes as they end)."""
        return list(self._runs.values())

    def __len__(self) -> int:
        return len(self._runs)


def resumes_in(fields: dict[str, Any]) -> int:
    """How many times the run was resumed, from its response's ``metadata.outlast_resumes``."""
    metadata = fields.get("metadata") or {}
    try:
        return int(metadata.get("outlast_resumes", 0))
    except (TypeError, ValueError):
        return 0


def request_json(request: AgentRequest, max_attempts: int | None = None) -> bytes:
    """What a replica needs, besides the input, to hand the agent this request, and the
    attempts the run may have (so a replica taking it over honours the creating one's)."""
    stored: dict[str, Any] = {
        "model": request.model,
        "instructions": request.instructions,
        "metadata": dict(request.metadata),
        "tools": list(request.tools),
        "previous_response_id": request.previous_response_id,
        "background": request.background,
        "params": dict(request.params),
    }
    if max_attempts is not None:
        stored["max_attempts"] = max_attempts
    return dumps(stored)


def stored_max_attempts(stored: dict[str, Any]) -> int | None:
    """The attempts a stored run may have (its :func:`request_json`), or None (stored before
    runs carried it: the executing replica's setting holds)."""
    value = stored.get("max_attempts")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


def stored_agent_request(
    record: ResponseRecord, stored: dict[str, Any], conversation: list[dict[str, Any]]
) -> AgentRequest:
    """The agent request of a stored run (``stored``: its :func:`request_json`)."""
    return AgentRequest(
        response_id=record.id,
        model=stored["model"],
        input=conversation,
        instructions=stored.get("instructions"),
        metadata=stored.get("metadata") or {},
        tools=stored.get("tools") or [],
        previous_response_id=stored.get("previous_response_id"),
        background=bool(stored.get("background")),
        params=stored.get("params") or {},
    )
