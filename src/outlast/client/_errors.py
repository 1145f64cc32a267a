"""Every error the client raises on its own account (API errors stay ``openai``'s)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openai.types.responses import Response

    from outlast.client._token import ContinuationToken


class OutlastError(Exception):
    """Base class of the client's errors."""


class InvalidToken(OutlastError, ValueError):
    """A continuation token that cannot be read."""


class RunNotFound(OutlastError, LookupError):
    """The response does not exist (any more) for this API key: deleted, expired or never made."""

    def __init__(self, response_id: str) -> None:
        super().__init__(f"Response {response_id} not found (deleted, expired, or another key's).")
        self.response_id = response_id


class RunEnded(OutlastError):
    """The run ended without completing; ``response`` is its final state."""

    def __init__(self, response: Response, message: str) -> None:
        super().__init__(message)
        self.response = response


class RunFailed(RunEnded):
    """The run ended ``failed``; ``message`` is the server's ``error.message``."""

    def __init__(self, response: Response) -> None:
        self.message = response.error.message if response.error else "the run failed"
        super().__init__(response, f"Response {response.id} failed: {self.message}")


class RunCancelled(RunEnded):
    """The run was cancelled."""

    def __init__(self, response: Response) -> None:
        super().__init__(response, f"Response {response.id} was cancelled.")


class RunIncomplete(RunEnded):
    """The run ended ``incomplete`` (e.g. it hit ``max_output_tokens``)."""

    def __init__(self, response: Response) -> None:
        details = response.incomplete_details
        self.reason = details.reason if details is not None else None
        super().__init__(response, f"Response {response.id} is incomplete ({self.reason}).")


class ReconnectFailed(OutlastError, ConnectionError):
    """The server stayed unreachable for longer than ``give_up_after``; ``__cause__`` says why.

    ``token`` is where the stream stood: resume from it later, nothing is lost.
    """

    def __init__(self, token: ContinuationToken | None, waited: float) -> None:
        where = f"; resume from {token}" if token is not None else ""
        super().__init__(f"Gave up reconnecting after {waited:.0f} s{where}.")
        self.token = token


class StartInterrupted(OutlastError, ConnectionError):
    """The connection broke after a create request was sent and before its response id arrived.

    The run may or may not exist; there is no id to resume it by. ``__cause__`` says why.
    """


class WaitTimeout(OutlastError, TimeoutError):
    """``wait()`` ran out of time; the run goes on. ``response`` is its last polled state."""

    def __init__(self, response: Response | None, token: ContinuationToken, timeout: float) -> None:
        status = response.status if response is not None else "unknown"
        super().__init__(f"Response {token.response_id} still {status} after {timeout:g} s.")
        self.response = response
        self.token = token
