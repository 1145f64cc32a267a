"""The stream of ``GET /v1/responses/{id}?stream=true``: a stored response's events after
``starting_after``, then live ones, ending with ``data: [DONE]`` once the response has ended.

The engine's reader ends after the terminal event, and :func:`outlast.http.sse.frames` puts
``[DONE]`` after it. A resume from the last event of a finished response (or from beyond it)
reads no event at all, so no batch carries the terminal event: the stream would end bare, which
to a client looks like a cut. It ends with ``[DONE]`` as well, once the store confirms that the
response has ended; a stream the server cut (a shutdown: the response has not ended) or whose
response was deleted meanwhile still ends without it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from outlast.asgi.stream import SSEStream
from outlast.engine import Engine
from outlast.engine.errors import EngineError
from outlast.http.sse import DONE, SSE_HEADERS, frames
from outlast.protocol.events import TERMINAL_STATUSES, Event
from outlast.store.base import StoreUnavailable


def _encode(item: list[Event] | None) -> bytes:
    # None: the response's end, when no batch of this stream carried its terminal event.
    return DONE if item is None else frames(item)


async def _until_done(
    engine: Engine, batches: AsyncIterator[list[Event]], response_id: str, owner: str
) -> AsyncIterator[list[Event] | None]:
    ended = False
    try:
        async for batch in batches:
            if batch:
                ended = batch[-1].is_terminal
            yield batch
    finally:
        aclose = getattr(batches, "aclose", None)
        if aclose is not None:
            await aclose()
    if ended:
        return
    try:
        record = await engine.record(response_id, owner)
    except (EngineError, StoreUnavailable):
        return  # deleted meanwhile, or no store to ask: say nothing rather than guess
    if record.status in TERMINAL_STATUSES:
        yield None


async def replay_response(
    engine: Engine, response_id: str, owner: str, after: int
) -> SSEStream[list[Event] | None]:
    """The ``text/event-stream`` of a stored response's events after ``after`` (checked before
    anything is sent: a missing or foreground response raises, as :meth:`Engine.stream` does)."""
    batches = await engine.stream(response_id, owner, after)
    return SSEStream(_until_done(engine, batches, response_id, owner), _encode, SSE_HEADERS)
