"""A run of this process: the mutable :class:`Run` the engine keeps, the frozen :class:`RunHandle`
transports get back.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from outlast.agents.base import AgentRequest
from outlast.engine.hub import Subscription
from outlast.protocol.normalizer import Normalizer
from outlast.protocol.state import ResponseState


class Run:
    """A response that is queued or running on this server."""

    __slots__ = (
        "agent_request", "attempt", "background", "created", "done", "finishing", "id", "lost",
        "normalizer", "owner", "remote", "snapshot_at", "stop_reason", "store", "task",
        "timeout_handle", "write_error",
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
        self.stop_reason: str | None = None
        self.finishing = False
        self.done = asyncio.Event()
        self.timeout_handle: asyncio.TimerHandle | None = None
        self.snapshot_at = 0.0
        # The response object as created (status queued for a background response): what the
        # create request answers, even if the run has started by the time it does.
        self.created = b""
        self.attempt = attempt
        # Executed by another replica (this one only created it and waits for or streams it).
        self.remote = False
        # This replica may no longer write the run's events (fenced, or a write failed for good).
        self.lost = False
        self.write_error: Any = None

    @property
    def state(self) -> ResponseState:
        return self.normalizer.state


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
