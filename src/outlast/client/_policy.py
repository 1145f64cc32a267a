"""What sync and async clients share: backoff, which errors are worth a retry, the read cursor."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
from openai.types.responses import Response, ResponseStreamEvent

from outlast.client._errors import (
    OutlastError,
    ReconnectFailed,
    RunCancelled,
    RunFailed,
    RunIncomplete,
    RunNotFound,
    StartInterrupted,
)
from outlast.client._token import ContinuationToken

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "incomplete"})
TERMINAL_EVENT_TYPES = frozenset({"response.completed", "response.failed", "response.incomplete"})


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with jitter: ``initial``, times ``multiplier``, up to ``maximum``.

    Each delay is scaled by a random factor in ``[1 - jitter, 1]`` so that many clients cut off
    by the same restart do not reconnect in lockstep.
    """

    initial: float = 0.25
    maximum: float = 10.0
    multiplier: float = 2.0
    jitter: float = 0.25

    def delays(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield delay * (1.0 - self.jitter * random.random())
            delay = min(delay * self.multiplier, self.maximum)


@dataclass(frozen=True, slots=True)
class Reconnecting:
    """Passed to ``on_reconnect`` before each reconnect of a stream."""

    token: ContinuationToken
    """Where the stream stands: the resume continues after ``token.sequence_number``."""
    attempt: int
    """1 for the first try after a loss, 2 for the next, …"""
    delay: float
    """Seconds until the attempt."""
    error: BaseException | None
    """What broke the connection (``None``: the stream ended before the run did)."""


OnReconnect = Callable[[Reconnecting], None]


def retryable(exc: BaseException) -> bool:
    """A dropped or refused connection, a timeout, a 5xx, 408 or 429: worth another try."""
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500 or exc.status_code in (408, 429)
    # The SDK wraps transport errors, except a few raised while a stream body is being closed.
    return isinstance(exc, httpx2.TransportError)


def safe_to_resend(exc: BaseException) -> bool:
    """A create request that surely made nothing: never connected, or refused (429, 503)."""
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (429, 503)
    if isinstance(exc, openai.APIConnectionError):
        return isinstance(exc.__cause__, httpx2.ConnectError)
    return False


def not_found(exc: BaseException, response_id: str) -> RunNotFound | None:
    if isinstance(exc, openai.NotFoundError):
        return RunNotFound(response_id)
    return None


def interrupted_start(exc: Exception) -> None:
    """A create whose connection broke after it was sent: :class:`StartInterrupted`.

    The server may have made the run; sending the create again could make a second one.
    """
    if retryable(exc):
        raise StartInterrupted(
            f"the create request was sent but its answer did not arrive ({exc}): "
            "the run may or may not exist"
        ) from exc


def check_outcome(response: Response) -> Response:
    """The response if it completed; otherwise the error that says how it ended."""
    if response.status == "completed":
        return response
    if response.status == "failed":
        raise RunFailed(response)
    if response.status == "cancelled":
        raise RunCancelled(response)
    if response.status == "incomplete":
        raise RunIncomplete(response)
    raise ValueError(f"response {response.id} has not finished: {response.status}")


class Retry:
    """The reconnect schedule of one stream, and its give-up clock.

    The clock measures time since the server last answered (a stream opened or an event
    arrived): a run that is merely quiet never makes the client give up, a server that stays
    down for ``give_up_after`` seconds does.
    """

    def __init__(self, backoff: Backoff, give_up_after: float | None) -> None:
        self.backoff = backoff
        self.give_up_after = give_up_after
        self.attempt = 0
        self._delays = backoff.delays()
        self._healthy_at = time.monotonic()
        self._progressed = False

    def healthy(self) -> None:
        """The server answered: restart the give-up clock."""
        self._healthy_at = time.monotonic()

    def progressed(self) -> None:
        """An event arrived: the next loss reconnects at once, then backs off from the start."""
        self._healthy_at = time.monotonic()
        self._progressed = True

    def next_delay(self, token: ContinuationToken | None) -> float:
        """The delay before the next attempt, or :class:`ReconnectFailed` when out of time."""
        self.attempt = 1 if self._progressed else self.attempt + 1
        if self._progressed:
            self._progressed = False
            self._delays = self.backoff.delays()
            delay = 0.0
        else:
            delay = next(self._delays)
        waited = time.monotonic() - self._healthy_at
        if self.give_up_after is not None and waited + delay > self.give_up_after:
            raise ReconnectFailed(token, waited)
        return delay


class Cursor:
    """Where one reader stands: drops duplicates, advances the token, notices the end."""

    def __init__(self, token: ContinuationToken | None) -> None:
        self.token = token
        self.response: Response | None = None
        """The latest response object an event carried (the final one after the end)."""
        self.finished = False

    def accept(self, event: ResponseStreamEvent) -> bool:
        """Whether ``event`` is new (to be yielded); advances the token if so."""
        seq = event.sequence_number
        if self.token is None:
            # The first event of a create stream names the response.
            response = getattr(event, "response", None)
            if not isinstance(response, Response):
                raise OutlastError(f"the stream began with {event.type}, not response.created")
            self.token = ContinuationToken(response.id, seq)
        elif seq <= self.token.sequence_number:
            return False  # already yielded: a server that replays more than asked
        else:
            self.token = self.token.after(seq)
        response = getattr(event, "response", None)
        if isinstance(response, Response):
            self.response = response
        if event.type in TERMINAL_EVENT_TYPES:
            self.finished = True
        return True


def run_params(params: dict[str, Any], *, stream: bool) -> dict[str, Any]:
    """Create parameters for a background run; ``background`` and ``stream`` are the client's."""
    params = dict(params)
    if params.pop("background", True) is not True:
        raise ValueError("a resumable run is a background run: leave background=True")
    if params.pop("stream", stream) is not stream:
        raise ValueError("stream() streams and start() does not: drop the stream parameter")
    return params
