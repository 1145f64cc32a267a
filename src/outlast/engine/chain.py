"""``previous_response_id``: the conversation a chained response continues, as the agent's input."""

from __future__ import annotations

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

    async def history(self, previous_id: str, owner: str) -> list[dict[str, Any]]:
        """The inputs and outputs of the chain ending at ``previous_id``, oldest first.

        Raises :class:`InvalidRequest` on ``previous_response_id`` if that response is not
        visible to ``owner`` or has not finished.
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
        return await self.chain(record, owner)

    async def of_claimed(self, record: ResponseRecord) -> list[dict[str, Any]]:
        """The history of a stored run about to execute ([] if its predecessor is gone)."""
        if record.previous_response_id is None:
            return []
        previous = await self.store.get_response(record.previous_response_id, record.owner)
        if previous is None:
            return []
        return await self.chain(previous, record.owner)

    async def chain(self, record: ResponseRecord, owner: str) -> list[dict[str, Any]]:
        """The inputs and outputs of ``record``'s chain up to and including it, oldest first."""
        chain = [record]
        while chain[-1].previous_response_id is not None:
            earlier = await self.store.get_response(chain[-1].previous_response_id, owner)
            if earlier is None:  # deleted or expired: the chain starts after it
                break
            chain.append(earlier)
        items: list[dict[str, Any]] = []
        for link in reversed(chain):
            items.extend(orjson.loads(link.input))
            items.extend(orjson.loads(link.snapshot).get("output") or [])
        return items
