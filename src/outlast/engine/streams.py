"""How many event streams are open, per API key and per response, and the limit on each.

Every open stream costs the server a reader task, a hub subscription and a page of events, for
as long as its client keeps it open (a paused client keeps it open for ever, if it likes). One
key may hold at most ``max_streams_per_key`` of them on this replica, one response at most
``max_streams_per_response``; beyond either, :class:`~outlast.engine.errors.TooManyStreams`
(a 429 that says when to retry). A stream's slot is given back when the stream is closed,
however it ends.

The same counts are this process's stream figures for ``/metrics`` (read when scraped): streams
opened and resumed, open now, events delivered. They are plain integers kept where each batch
passes anyway, rather than a metrics layer wrapping every stream: on a server hosting many runs
that each emit now and then, every batch is one event, and each layer of async iteration cost
as much as the counting.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from outlast.engine.errors import TooManyStreams
from outlast.protocol.events import Event


class StreamCounts:
    """The open streams of this process, by owner and by response."""

    def __init__(self, per_owner: int, per_response: int) -> None:
        self.per_owner = per_owner
        self.per_response = per_response
        self.by_owner: Counter[str] = Counter()
        self.by_response: Counter[str] = Counter()
        self.opened = 0
        """Streams opened, ever."""
        self.resumed = 0
        """Of those, the ones that started after a sequence number (``starting_after``)."""
        self.delivered = 0
        """Events handed to the transports, ever (a keep-alive is none)."""

    @property
    def open_now(self) -> int:
        """Streams open now (read when scraped, so summed then)."""
        return sum(self.by_owner.values())

    def check(self, owner: str, response_id: str | None = None) -> None:
        """Raise :class:`TooManyStreams` if one more stream of ``owner`` (on ``response_id``)
        would pass a limit."""
        if self.by_owner[owner] >= self.per_owner:
            raise TooManyStreams(
                f"Too many open streams for this API key ({self.per_owner}); close one or "
                "retry later.",
            )
        if response_id is not None and self.by_response[response_id] >= self.per_response:
            raise TooManyStreams(
                f"Too many open streams of response '{response_id}' ({self.per_response}); "
                "close one or retry later.",
            )

    def open(
        self,
        owner: str,
        response_id: str,
        batches: AsyncIterator[list[Event]],
        *,
        check: bool,
        resume: bool = False,
    ) -> CountedStream:
        """``batches`` holding a slot of ``owner`` and ``response_id`` until it is closed
        (``check``: refuse it first if a limit is reached; ``resume``: it starts after a
        sequence number)."""
        if check:
            self.check(owner, response_id)
        self.by_owner[owner] += 1
        self.by_response[response_id] += 1
        self.opened += 1
        self.resumed += resume
        return CountedStream(self, owner, response_id, batches)

    def _release(self, owner: str, response_id: str) -> None:
        for counts, key in ((self.by_owner, owner), (self.by_response, response_id)):
            counts[key] -= 1
            if counts[key] <= 0:
                del counts[key]


class CountedStream:
    """An engine stream that gives its slot back when it ends or is closed (even if it was never
    iterated: an async generator that never started would not run its ``finally``)."""

    __slots__ = ("_batches", "_counts", "_owner", "_released", "_response_id")

    def __init__(
        self,
        counts: StreamCounts,
        owner: str,
        response_id: str,
        batches: AsyncIterator[list[Event]],
    ) -> None:
        self._counts = counts
        self._owner = owner
        self._response_id = response_id
        self._batches = batches
        self._released = False

    def __aiter__(self) -> CountedStream:
        return self

    async def __anext__(self) -> list[Event]:
        try:
            batch = await self._batches.__anext__()
            self._counts.delivered += len(batch)
            return batch
        except BaseException:
            # The end of the stream, its failure or its cancellation: the slot is free again.
            self._release()
            raise

    async def aclose(self) -> None:
        self._release()
        aclose: Any = getattr(self._batches, "aclose", None)
        if aclose is not None:
            await aclose()

    def _release(self) -> None:
        if not self._released:
            self._released = True
            self._counts._release(self._owner, self._response_id)

    def __del__(self) -> None:
        # A stream dropped without being closed (a transport that failed before sending it).
        self._release()
