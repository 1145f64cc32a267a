"""Live events of runs that execute on other replicas.

Another replica's commit arrives here as a notification naming the response and the sequence
numbers it committed, never the events themselves. If this replica has readers of that response,
one fetch reads the new events from the store and publishes them to the hub, where the readers
take them exactly as they take events of local runs. Notifications that arrive while a fetch is
running are coalesced into the next fetch, so a busy run costs one store read per fetch, not per
notification, however many readers it has here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from outlast.engine.hub import Hub
from outlast.store.base import Store
from outlast.store.shared import EventsCommitted

log = logging.getLogger("outlast.runs")

FETCH_PAGE = 2_000


class RemoteTail:
    """Turns commit notifications into hub publications for this replica's readers."""

    def __init__(self, store: Store, hub: Hub, is_local: Callable[[str], bool]) -> None:
        self.store = store
        self.hub = hub
        self.is_local = is_local
        # Per response with readers here: the last sequence number published, and whether more
        # was committed while a fetch was under way.
        self._last: dict[str, int] = {}
        self._dirty: set[str] = set()
        self._fetching: dict[str, asyncio.Task[None]] = {}

    def committed(self, notices: list[EventsCommitted]) -> None:
        for notice in notices:
            rid = notice.response_id
            if self.is_local(rid) or not self.hub.has_subscribers(rid):
                self._last.pop(rid, None)
                continue
            if rid not in self._last:
                self._last[rid] = notice.first - 1
            if rid in self._fetching:
                self._dirty.add(rid)
            else:
                task = asyncio.create_task(self._fetch(rid), name=f"tail-{rid}")
                self._fetching[rid] = task

    def refresh_all(self) -> None:
        """Notifications may have been missed: fetch everything readers here are waiting for."""
        for rid in self.hub.subscribed_ids():
            if not self.is_local(rid) and rid not in self._fetching:
                self._last.setdefault(rid, -1)
                self._fetching[rid] = asyncio.create_task(self._fetch(rid), name=f"tail-{rid}")

    async def _fetch(self, rid: str) -> None:
        try:
            while True:
                self._dirty.discard(rid)
                after = self._last.get(rid, -1)
                while True:
                    events = await self.store.read_events(rid, after, FETCH_PAGE)
                    if not events:
                        break
                    after = events[-1].seq
                    self._last[rid] = after
                    self.hub.publish(rid, events)
                    if len(events) < FETCH_PAGE:
                        break
                if rid not in self._dirty:
                    return
        except Exception as exc:
            # Readers are not stranded: their keep-alive check reads the store themselves.
            log.warning("could not fetch new events of %s: %s", rid, exc)
        finally:
            self._fetching.pop(rid, None)
            if not self.hub.has_subscribers(rid):
                self._last.pop(rid, None)

    async def close(self) -> None:
        tasks = list(self._fetching.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
