"""Retention: responses past their expiry are deleted, in bounded batches, every interval."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from outlast.engine.cache import FinishedCache
from outlast.engine.run import RunTable
from outlast.store.base import Store, StoreUnavailable
from outlast.store.writer import GroupCommitWriter

log = logging.getLogger("outlast.runs")

RETENTION_BATCH = 500

Lock = Callable[[str], AbstractAsyncContextManager[bool]]
"""Takes a named lock if free; the context's value says whether this process holds it."""


class Retention:
    """The expired-response sweep; on a shared store one replica sweeps each round."""

    def __init__(
        self,
        *,
        store: Store,
        writer: GroupCommitWriter,
        finished: FinishedCache,
        runs: RunTable,
        interval: float,
        lock: Lock,
    ) -> None:
        self.store = store
        self.writer = writer
        self.finished = finished
        self.runs = runs
        self.interval = interval
        self.lock = lock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="outlast-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                # One replica at a time: the others skip this round.
                async with self.lock("outlast-retention") as ours:
                    if ours:
                        await self.purge_expired()
            except StoreUnavailable as exc:
                log.warning("retention sweep skipped: %s", exc)
            except Exception:
                log.exception("retention sweep failed")

    async def purge_expired(self) -> int:
        """Delete expired responses in bounded batches (never a run live here); returns how many."""
        total = 0
        while True:
            ids = [
                rid
                for rid in await self.store.expired_response_ids(time.time(), RETENTION_BATCH)
                if not self.runs.is_live(rid)
            ]
            if not ids:
                return total
            for rid in ids:
                self.finished.evict(rid)
            await asyncio.gather(*(self.writer.delete(rid) for rid in ids))
            total += len(ids)
            if len(ids) < RETENTION_BATCH:
                return total
