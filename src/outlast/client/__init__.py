"""outlast's client: background runs that never get lost, from any process.

    from outlast.client import OutlastClient

    client = OutlastClient(base_url="http://127.0.0.1:8000/v1", api_key="...")
    stream = client.stream(model="demo", input="steps=30 delay=1 resumable streams")
    for event in stream:                     # reconnects by itself, each event exactly once
        save(str(stream.token))              # "resp_…:41": resume after this event, anywhere
    ...
    for event in client.resume(saved_token): # in another process, later
        ...

Everything here uses the standard Responses endpoints, so it works against OpenAI's API too
(except :meth:`OutlastClient.list_responses`, an outlast extension).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from outlast.client._async import AsyncOutlastClient, AsyncRunStream
    from outlast.client._errors import (
        InvalidToken,
        OutlastError,
        ReconnectFailed,
        RunCancelled,
        RunEnded,
        RunFailed,
        RunIncomplete,
        RunNotFound,
        StartInterrupted,
        WaitTimeout,
    )
    from outlast.client._policy import Backoff, Reconnecting, check_outcome
    from outlast.client._sync import OutlastClient, RunStream
    from outlast.client._token import ContinuationToken, TokenLike

# Where each name lives. They are imported when first asked for (PEP 562), because the clients
# import the ``openai`` SDK (half a second, ~25 MB) and ``outlast`` (the server, and ``outlast
# ls``) imports this package for its command line without needing them.
_HOMES = {
    "AsyncOutlastClient": "_async",
    "AsyncRunStream": "_async",
    "InvalidToken": "_errors",
    "OutlastError": "_errors",
    "ReconnectFailed": "_errors",
    "RunCancelled": "_errors",
    "RunEnded": "_errors",
    "RunFailed": "_errors",
    "RunIncomplete": "_errors",
    "RunNotFound": "_errors",
    "StartInterrupted": "_errors",
    "WaitTimeout": "_errors",
    "Backoff": "_policy",
    "Reconnecting": "_policy",
    "check_outcome": "_policy",
    "OutlastClient": "_sync",
    "RunStream": "_sync",
    "ContinuationToken": "_token",
    "TokenLike": "_token",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # asked once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])


__all__ = [
    "AsyncOutlastClient",
    "AsyncRunStream",
    "Backoff",
    "ContinuationToken",
    "InvalidToken",
    "OutlastClient",
    "OutlastError",
    "ReconnectFailed",
    "Reconnecting",
    "RunCancelled",
    "RunEnded",
    "RunFailed",
    "RunIncomplete",
    "RunNotFound",
    "RunStream",
    "StartInterrupted",
    "TokenLike",
    "WaitTimeout",
    "check_outcome",
]
