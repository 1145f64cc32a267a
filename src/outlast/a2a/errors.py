"""Engine errors as A2A errors: one table.

A2A has codes for a missing task and for bad parameters; a full queue, a key at one of its
limits and a draining server have none of their own. They are :class:`Busy` and
:class:`Draining`, kinds of A2A's internal error: over JSON-RPC ``-32603`` with a message that
says to retry, over HTTP+JSON (and gRPC) a 429 ``RESOURCE_EXHAUSTED`` or a 503 ``UNAVAILABLE``,
as the Responses API answers them, never a 500; ``data.retryAfterSeconds`` says when to retry
(and HTTP+JSON sends it as ``Retry-After``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from a2a.utils import errors as sdk_errors
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


class Busy(InternalError):
    """No room now: the queue is full, or the caller's key is at one of its limits."""


class Draining(InternalError):
    """The server is shutting down and takes nothing new; retry shortly (elsewhere)."""


SPEC_MAPPINGS: dict[type[A2AError], sdk_errors.ErrorMapping] = {
    # A2A 1.0 §5.4 "Error code mappings", where a2a-sdk 1.3's own table differs from it (the
    # SDK answers 400 for a task that cannot be canceled, and FAILED_PRECONDITION over gRPC
    # for an unsupported operation or version): the spec's HTTP status and gRPC code, the
    # SDK's reason (clients decode errors by reason, so a2a-sdk's own client is unaffected).
    sdk_errors.TaskNotCancelableError: sdk_errors.ErrorMapping(
        409, "FAILED_PRECONDITION", "TASK_NOT_CANCELABLE"
    ),
    sdk_errors.PushNotificationNotSupportedError: sdk_errors.ErrorMapping(
        400, "UNIMPLEMENTED", "PUSH_NOTIFICATION_NOT_SUPPORTED"
    ),
    sdk_errors.UnsupportedOperationError: sdk_errors.ErrorMapping(
        400, "UNIMPLEMENTED", "UNSUPPORTED_OPERATION"
    ),
    sdk_errors.ContentTypeNotSupportedError: sdk_errors.ErrorMapping(
        415, "INVALID_ARGUMENT", "CONTENT_TYPE_NOT_SUPPORTED"
    ),
    sdk_errors.InvalidAgentResponseError: sdk_errors.ErrorMapping(
        502, "INTERNAL", "INVALID_AGENT_RESPONSE"
    ),
    sdk_errors.VersionNotSupportedError: sdk_errors.ErrorMapping(
        400, "UNIMPLEMENTED", "VERSION_NOT_SUPPORTED"
    ),
    # Ours: A2A has no error for a full queue or a draining server.
    Busy: sdk_errors.ErrorMapping(429, "RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED"),
    Draining: sdk_errors.ErrorMapping(503, "UNAVAILABLE", "UNAVAILABLE"),
}
"""The HTTP status, gRPC code and reason outlast answers each of these errors with, over the
SDK's table (which its HTTP+JSON routes and gRPC handler read)."""

for _error, _mapping in SPEC_MAPPINGS.items():
    sdk_errors.A2A_ERROR_MAPPING[_error] = _mapping
    sdk_errors.A2A_ERROR_REASONS[_error] = _mapping.reason


def retry_after(exc: EngineError) -> dict[str, int]:
    """The ``data`` of a busy error: whole seconds before a retry may succeed."""
    return {"retryAfterSeconds": max(1, math.ceil(getattr(exc, "retry_after", 1.0)))}


# A missing task keeps A2A's own wording: the engine's speaks of responses.
ENGINE_ERRORS: dict[type[EngineError], Callable[[EngineError], A2AError]] = {
    NotFound: lambda exc: TaskNotFoundError(),
    InvalidRequest: lambda exc: InvalidParamsError(message=exc.message),
    NotCancellable: lambda exc: InvalidParamsError(message=exc.message),
    QueueFull: lambda exc: Busy(message=exc.message, data=retry_after(exc)),
    ShuttingDown: lambda exc: Draining(message=exc.message, data=retry_after(exc)),
    TooManyStreams: lambda exc: Busy(message=exc.message, data=retry_after(exc)),
}


def from_engine(exc: EngineError) -> A2AError:
    """The A2A error an engine error is answered with."""
    return ENGINE_ERRORS[type(exc)](exc)
