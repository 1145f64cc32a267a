"""The hook object the engine calls at a run's lifecycle points."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from outlast.store.base import OutboxRow

log = logging.getLogger("outlast.observe")

__all__ = ["Observer", "Observers", "OutboxRow", "RunInfo"]


@dataclass(slots=True)
class RunInfo:
    """What the hooks are told about a run (never a label: ids go only to spans and webhooks)."""

    response_id: str
    model: str
    background: bool
    created_at: float
    """Unix time the response was created (its run span and duration start here)."""
    attempt: int = 1
    resumes: int = 0
    """How many times the run was resumed from its journal of steps (durable runs)."""


class Observer:
    """Lifecycle hooks; every method is a no-op here. Hooks must never raise or wait."""

    wants_outputs = False
    """Whether :meth:`agent_output` should be called for each agent output (tracing's tool spans)."""

    async def start(self) -> None:
        """Start background work (after the store is open)."""

    async def close(self) -> None:
        """Stop background work (before the store closes)."""

    def run_created(self, run: RunInfo, local: bool) -> None:
        """A response was stored; ``local``: it executes here. Called in the creating request."""

    def run_claimed(self, run: RunInfo) -> None:
        """This replica claimed a run from the shared queue (created elsewhere) to execute it."""

    def run_started(self, run: RunInfo) -> None:
        """The run's agent starts on this replica."""

    def agent_output(self, response_id: str, output: Any) -> None:
        """The agent yielded ``output`` (only while :attr:`wants_outputs`)."""

    def outbox(self, run: RunInfo, status: str) -> list[OutboxRow]:
        """Rows to write in the same transaction as the run's terminal event ``status``."""
        return []

    def run_ended(self, run: RunInfo, status: str, events: int, error: str | None) -> None:
        """The run's terminal event committed (``events``: how many events its log holds)."""

    def run_released(self, response_id: str) -> None:
        """The run stops here without ending: it is re-queued or was taken over elsewhere."""

    def run_resumed(self, run: RunInfo) -> None:
        """The run was interrupted and queued again to be resumed from its journal of steps
        (``run.resumes`` counts this resume too)."""

    def outbox_committed(self) -> None:
        """Outbox rows were committed: deliveries may start."""

    def commit(self, events: int, seconds: float) -> None:
        """The group-commit writer committed a batch of ``events`` in ``seconds``."""


class Observers(Observer):
    """Several observers as one: each hook is called on each, in order."""

    def __init__(self, observers: list[Observer]) -> None:
        self.observers = observers
        self.wants_outputs = any(o.wants_outputs for o in observers)
        self._outputs = [o for o in observers if o.wants_outputs]

    async def start(self) -> None:
        for o in self.observers:
            await o.start()

    async def close(self) -> None:
        for o in reversed(self.observers):
            try:
                await o.close()
            except Exception:
                log.exception("closing %s failed", type(o).__name__)

    def run_created(self, run: RunInfo, local: bool) -> None:
        for o in self.observers:
            o.run_created(run, local)

    def run_claimed(self, run: RunInfo) -> None:
        for o in self.observers:
            o.run_claimed(run)

    def run_started(self, run: RunInfo) -> None:
        for o in self.observers:
            o.run_started(run)

    def agent_output(self, response_id: str, output: Any) -> None:
        for o in self._outputs:
            o.agent_output(response_id, output)

    def outbox(self, run: RunInfo, status: str) -> list[OutboxRow]:
        rows: list[OutboxRow] = []
        for o in self.observers:
            rows += o.outbox(run, status)
        return rows

    def run_ended(self, run: RunInfo, status: str, events: int, error: str | None) -> None:
        for o in self.observers:
            try:
                o.run_ended(run, status, events, error)
            except Exception:
                log.exception("an observer failed at the end of %s", run.response_id)

    def run_released(self, response_id: str) -> None:
        for o in self.observers:
            o.run_released(response_id)

    def run_resumed(self, run: RunInfo) -> None:
        for o in self.observers:
            o.run_resumed(run)

    def outbox_committed(self) -> None:
        for o in self.observers:
            o.outbox_committed()

    def commit(self, events: int, seconds: float) -> None:
        for o in self.observers:
            o.commit(events, seconds)
