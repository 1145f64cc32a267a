"""``previous_response_id``: the conversation a chained response continues, as the agent's input."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from outlast.engine.errors import InvalidRequest
from outlast.protocol.events import TERMINAL_STATUSES
from outlast.store.base import ResponseRecord, Store


def visible(record: ResponseRecord) -> bool:
    """A client may see the response: it was stored and has not expired."""
    if not record.store:
        return False
    return record.expires_at is None or record.expires_at > time.time()


class Chains:
    """Reads the chain of responses a new one continues from the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def history(
        self, previous_id: str, owner: str, max_bytes: int | None = None, counted: int = 0
    ) -> list[dict[str, Any]]:
        """The inputs and outputs of the chain ending at ``previous_id``, oldest first.

        Raises :class:`InvalidRequest` on ``previous_response_id`` if that response is not
        visible to ``owner``, has not finished, or its chain and the ``counted`` bytes of the
        new input together hold more than ``max_bytes``.
        """
        record = await self.store.get_response(previous_id, owner)
        if record is None or not visible(record):
            raise InvalidRequest(
                f"Previous response with id '{previous_id}' not found.",
                field="previous_response_id",
                reason="previous_response_not_found",
            )
        if record.status not in TERMINAL_STATUSES:
            raise InvalidRequest(
                f"Previous response with id '{previous_id}' is still {record.status}; "
                "wait for it to finish.",
                field="previous_response_id",
                reason="previous_response_in_progress",
            )
        return await self.chain(record, owner, max_bytes, counted)

    async def of_claimed(self, record: ResponseRecord) -> list[dict[str, Any]]:
        """The history of a stored run about to execute ([] if its predecessor is gone)."""
        if record.previous_response_id is None:
            return []
        previous = await self.store.get_response(record.previous_response_id, record.owner)
        if previous is None:
            return []
        return await self.chain(previous, record.owner)

    async def chain(
        self, record: ResponseRecord, owner: str, max_bytes: int | None = None, counted: int = 0
    ) -> list[dict[str, Any]]:
        """The inputs and outputs of ``record``'s chain up to and including it, oldest first.

        Its size is counted from the stored bytes as each turn is read, before anything is
        parsed: past ``max_bytes`` the chain is refused, and a large one is parsed off the loop.
        """
        chain = [record]
        size = counted + _stored_size(record)
        while True:
            if max_bytes is not None and size > max_bytes:
                raise conversation_too_large(max_bytes, "previous_response_id")
            if chain[-1].previous_response_id is None:
                break
            earlier = await self.store.get_response(chain[-1].previous_response_id, owner)
            if earlier is None:  # deleted or expired: the chain starts after it
                break
            chain.append(earlier)
            size += _stored_size(earlier)
        chain.reverse()
        if size > OFF_LOOP_BYTES:
            return await asyncio.to_thread(_items, chain)
        return _items(chain)


# A conversation or an input at least this large is parsed or serialised in a worker thread (at
# about 100 MB/s, 256 KiB is a few milliseconds of the loop's time; a thread hop costs ~50 µs).
OFF_LOOP_BYTES = 256 * 1024
OFF_LOOP_ITEMS = 1000


def _stored_size(record: ResponseRecord) -> int:
    return len(record.input) + len(record.snapshot)


def _items(chain: list[ResponseRecord]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for link in chain:
        items.extend(orjson.loads(link.input))
        items.extend(orjson.loads(link.snapshot).get("output") or [])
    return items


def conversation_too_large(limit: int, field: str) -> InvalidRequest:
    """The conversation (a new input and the earlier turns it continues) passes ``limit``."""
    return InvalidRequest(
        f"The conversation is too large: its input and the earlier turns of its "
        f"previous_response_id chain, as stored, must not exceed {limit} bytes "
        f"(--max-conversation-size). Start a new conversation, or send less input.",
        field=field,
        reason="context_length_exceeded",
    )
