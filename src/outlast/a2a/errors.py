"""Engine errors as A2A errors: one table.

A2A has codes for a missing task and for bad parameters; a full queue and a draining server
have none of their own, so they are internal errors whose message says to retry.
"""

from __future__ import annotations

from collections.abc import Callable

from a2a.utils.errors import A2AError, InternalError, InvalidParamsError, TaskNotFoundError

from outlast.engine.errors import (
    EngineError,
    InvalidRequest,
    NotCancellable,
    NotFound,
    QueueFull,
    ShuttingDown,
    TooManyStreams,
)

# A missing task keeps A2A's own wording: the engine's speaks of responses.
ENGINE_ERRORS: dict[type[EngineError], Callable[[EngineError], A2AError]] = {
    NotFound: lambda exc: TaskNotFoundError(),
    InvalidRequest: lambda exc: InvalidParamsError(message=exc.message),
    NotCancellable: lambda exc: InvalidParamsError(message=exc.message),
    QueueFull: lambda exc: InternalError(message=exc.message),
    ShuttingDown: lambda exc: InternalError(message=exc.message),
    TooManyStreams: lambda exc: InternalError(message=exc.message),
}


def from_engine(exc: EngineError) -> A2AError:
    """The A2A error an engine error is answered with."""
    return ENGINE_ERRORS[type(exc)](exc)
