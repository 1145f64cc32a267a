"""Cross-replica signals over PostgreSQL's LISTEN/NOTIFY: what a commit sends, and the loop that
receives them.

Both sides of each payload's format live here, so that they cannot drift apart:

- ``outlast_events``: a header line (the committing replica's worker id, ``-`` for none), then one
  ``<response id> <first seq> <last seq>`` line per response of the batch;
- ``outlast_work``: empty; runs were queued (or handed back) with no worker;
- ``outlast_cancel``: the response id whose cancellation was requested;
- ``outlast_deleted``: response ids separated by newlines.

Payloads never carry event bodies (those are read from the store) and are split to stay under
PostgreSQL's limit of 8000 bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Iterator

import asyncpg

from outlast.store.base import WriteBatch
from outlast.store.postgres import queries
from outlast.store.postgres.connection import CONNECTION_ERRORS
from outlast.store.shared import EventsCommitted, Listener

log = logging.getLogger("outlast.store")

CHANNEL_EVENTS = "outlast_events"
CHANNEL_WORK = "outlast_work"
CHANNEL_CANCEL = "outlast_cancel"
CHANNEL_DELETED = "outlast_deleted"
CHANNELS = (CHANNEL_EVENTS, CHANNEL_WORK, CHANNEL_CANCEL, CHANNEL_DELETED)
# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
NOTIFY_PAYLOAD_MAX = 7_900


def chunks(lines: list[str], header: str | None = None) -> Iterator[str]:
    """Join lines into payloads under PostgreSQL's NOTIFY size limit, each after ``header``."""
    start = [] if header is None else [header]
    chunk: list[str] = list(start)
    size = sum(len(line) + 1 for line in start)
    for line in lines:
        if len(chunk) > len(start) and size + len(line) + 1 > NOTIFY_PAYLOAD_MAX:
            yield "\n".join(chunk)
            chunk, size = list(start), sum(len(line) + 1 for line in start)
        chunk.append(line)
        size += len(line) + 1
    if len(chunk) > len(start):
        yield "\n".join(chunk)


def batch_payloads(batch: WriteBatch, spans: dict[str, list[int]]) -> list[tuple[str, str]]:
    """What ``batch`` announces to other replicas, as ``(channel, payload)`` pairs.

    ``spans``: each response's first and last sequence number in the batch.
    """
    payloads: list[tuple[str, str]] = [
        (CHANNEL_EVENTS, p)
        for p in chunks(
            [f"{rid} {a} {b}" for rid, (a, b) in spans.items()], header=batch.fence or "-"
        )
    ]
    if any(r.worker_id is None for r in batch.new_responses) or any(
        u.requeue for u in batch.updates.values()
    ):
        payloads.append((CHANNEL_WORK, ""))
    if batch.deletes:
        payloads += [(CHANNEL_DELETED, p) for p in chunks(batch.deletes)]
    return payloads


async def notify_batch(
    conn: asyncpg.Connection, batch: WriteBatch, spans: dict[str, list[int]]
) -> None:
    """Tell other replicas what this batch commits (sent by PostgreSQL at commit, not before)."""
    payloads = batch_payloads(batch, spans)
    if payloads:
        await conn.execute(queries.NOTIFY_MANY, [c for c, _ in payloads], [p for _, p in payloads])


def dispatch(listener: Listener, channel: str, payload: str) -> None:
    """Hand one notification to ``listener``; a handler's failure is logged, never raised."""
    try:
        if channel == CHANNEL_EVENTS:
            if listener.origin is not None and payload.startswith(listener.origin + "\n"):
                return  # this replica's own commits: its readers have them already
            origin, *lines = payload.split("\n")
            committed = []
            for line in lines:
                rid, first, last = line.split(" ")
                committed.append(EventsCommitted(rid, int(first), int(last)))
            listener.events(origin, committed)
        elif channel == CHANNEL_WORK:
            listener.work()
        elif channel == CHANNEL_CANCEL:
            listener.cancel(payload)
        elif channel == CHANNEL_DELETED:
            listener.deleted(payload.split())
    except Exception:
        log.exception("handling a %s notification failed", channel)


async def listen(url: str, listener: Listener) -> None:
    """One dedicated connection LISTENs; when it drops, reconnect and say so. Runs until
    cancelled."""

    def on_notification(_conn: object, _pid: int, channel: str, payload: str) -> None:
        dispatch(listener, channel, payload)

    delay = 0.1
    connected_before = False
    while True:
        try:
            conn = await asyncpg.connect(url, timeout=10)
        except (*CONNECTION_ERRORS, asyncpg.PostgresError) as exc:
            log.warning("cannot listen for notifications (%s); retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
            continue
        lost = asyncio.Event()
        conn.add_termination_listener(functools.partial(_set_event, lost))
        try:
            for channel in CHANNELS:
                await conn.add_listener(channel, on_notification)
            delay = 0.1
            if connected_before:
                log.info("listening for notifications again")
                listener.reconnected()
            connected_before = True
            # A silent partition does not close the socket: ping now and then.
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5.0):
                        await lost.wait()
                if not lost.is_set():
                    async with asyncio.timeout(5.0):
                        await conn.execute(queries.PING)
        except (*CONNECTION_ERRORS, asyncpg.PostgresError) as exc:
            log.warning("lost the notification connection (%s)", exc)
        finally:
            conn.terminate()


def _set_event(event: asyncio.Event, _conn: object) -> None:
    event.set()
