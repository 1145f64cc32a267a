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
