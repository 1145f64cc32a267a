"""Webhooks for background responses, sent the way OpenAI sends them.

When a background response ends, one ``response.completed`` / ``failed`` / ``cancelled`` /
``incomplete`` event per configured endpoint goes into the store's outbox **in the same
transaction as the terminal event**, so an event exists exactly when its response has ended, and
survives any crash. A delivery loop (on every replica) claims due rows, POSTs them with Standard
Webhooks signature headers (``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,…``,
HMAC-SHA256 over ``id.timestamp.body``), exactly what ``openai.OpenAI(webhook_secret=…)
.webhooks.unwrap(body, headers)`` verifies, and deletes a row once its endpoint answered 2xx.
A failed attempt is retried with exponential backoff, with the same ``webhook-id``, until the
retry period is over. Delivery is at least once: receivers de-duplicate on ``webhook-id``.

Deliveries run in their own tasks, bounded per endpoint; runs never wait for them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import random
import time
from typing import Protocol
from urllib.parse import urlsplit

import httpx
import orjson

from outlast.config import ObserveSettings
from outlast.observe.base import Observer, RunInfo
from outlast.protocol.ids import new_id
from outlast.store.base import OutboxRow, Store, StoreUnavailable

log = logging.getLogger("outlast.webhooks")

EVENT_TYPES = {
    "completed": "response.completed",
    "failed": "response.failed",
    "cancelled": "response.cancelled",
    "incomplete": "response.incomplete",
}
# Due rows are looked for this often (and at once when a run ends here or a delivery finishes).
POLL_SECONDS = 1.0
# The first retry waits this long; each next one twice as long, up to BACKOFF_MAX.
BACKOFF_BASE = 1.0
BACKOFF_MAX = 3600.0
# A claimed row is hidden from other claimers for the attempt's timeout plus this margin.
LEASE_MARGIN = 5.0
USER_AGENT = "outlast-webhooks/1"


class ResultSink(Protocol):
    def webhook_result(self, result: str) -> None: ...


def signing_key(secret: str) -> bytes:
    """The HMAC key of a secret: ``whsec_<base64>`` decoded (as OpenAI and the SDK do), or the
    string itself."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_") :], validate=True)
    return secret.encode()


def sign(key: bytes, webhook_id: str, timestamp: str, body: bytes) -> str:
    """The ``webhook-signature`` header value (Standard Webhooks ``v1``)."""
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def check_webhook_settings(settings: ObserveSettings) -> str | None:
    """What is wrong with the webhook flags, if anything (said before serving)."""
    if not settings.webhook_secret:
        return (
            "--webhook needs a signing secret: pass --webhook-secret (or OUTLAST_WEBHOOK_SECRET), "
            "e.g. whsec_ followed by base64 of 32 random bytes"
        )
    try:
        signing_key(settings.webhook_secret)
    except (binascii.Error, ValueError):
        return "--webhook-secret starts with whsec_ but the rest is not valid base64"
    for url in settings.webhooks:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"--webhook {url!r} is not an http(s) URL"
    return None


def backoff(attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``, with jitter so retries of many rows spread out."""
    delay: float = min(BACKOFF_BASE * 2 ** (attempts - 1), BACKOFF_MAX)
    return delay * random.uniform(1.0, 1.2)


class Webhooks(Observer):
    """Writes webhook events to the outbox at terminal states, and delivers the outbox."""

    def __init__(self, settings: ObserveSettings, store: Store, sink: ResultSink | None) -> None:
        assert settings.webhook_secret, "check_webhook_settings() first"
        self.settings = settings
        self.store = store
        self.sink = sink
        self.endpoints = list(dict.fromkeys(settings.webhooks))
        self.key = signing_key(settings.webhook_secret)
        self.lease = settings.webhook_timeout + LEASE_MARGIN
        self._in_flight = dict.fromkeys(self.endpoints, 0)
        self._deliveries: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    # -- the outbox ------------------------------------------------------------------------------

    def outbox(self, run: RunInfo, status: str) -> list[OutboxRow]:
        kind = EVENT_TYPES.get(status)
        if kind is None or not run.background:
            return []
        now = time.time()
        payload = orjson.dumps(
            {
                "id": new_id("evt"),
                "object": "event",
                "created_at": int(now),
                "type": kind,
                "data": {"id": run.response_id},
            }
        )
        return [OutboxRow(new_id("wh"), url, payload, now, 0, now) for url in self.endpoints]

    def outbox_committed(self) -> None:
        self._wake.set()

    # -- delivering ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=self.settings.webhook_timeout,
            follow_redirects=False,
            headers={"user-agent": USER_AGENT},
            limits=httpx.Limits(max_connections=self.settings.webhook_concurrency * 4),
        )
        self._task = asyncio.create_task(self._loop(), name="outlast-webhooks")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._deliveries:
            # Attempts under way get a moment; any cut short is retried once its lease lapses.
            _, pending = await asyncio.wait(self._deliveries, timeout=2.0)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _loop(self) -> None:
        delay = POLL_SECONDS
        while True:
            self._wake.clear()
            try:
                for endpoint in self.endpoints:
                    await self._claim(endpoint)
                delay = POLL_SECONDS
            except StoreUnavailable as exc:
                log.warning("webhook outbox unreachable (%s); retrying", exc)
                delay = min(delay * 2, 10.0)
            except Exception:
                log.exception("claiming webhook deliveries failed")
                delay = min(delay * 2, 10.0)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def _claim(self, endpoint: str) -> None:
        room = self.settings.webhook_concurrency - self._in_flight[endpoint]
        if room <= 0:
            return
        rows = await self.store.claim_outbox(endpoint, time.time(), room, self.lease)
        for row in rows:
            self._in_flight[endpoint] += 1
            task = asyncio.create_task(self._deliver(row), name=f"webhook-{row.id}")
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, row: OutboxRow) -> None:
        try:
            error = await self._attempt(row)
            try:
                await self._record(row, error)
            except StoreUnavailable as exc:
                # The row stays claimed; once its lease lapses it is attempted again.
                log.warning("could not record the webhook attempt %s: %s", row.id, exc)
        except Exception:
            log.exception("webhook delivery %s failed", row.id)
        finally:
            self._in_flight[row.endpoint] -= 1
            self._wake.set()

    async def _attempt(self, row: OutboxRow) -> str | None:
        """POST the event once; ``None`` if the endpoint accepted it, else what went wrong."""
        assert self._client is not None
        timestamp = str(int(time.time()))
        headers = {
            "content-type": "application/json",
            "webhook-id": row.id,
            "webhook-timestamp": timestamp,
            "webhook-signature": sign(self.key, row.id, timestamp, row.payload),
        }
        try:
            answer = await self._client.post(row.endpoint, content=row.payload, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if 200 <= answer.status_code < 300:
            return None
        return f"HTTP {answer.status_code}"

    async def _record(self, row: OutboxRow, error: str | None) -> None:
        if error is None:
            await self.store.outbox_done(row.id)
            self._result("delivered")
            log.info("webhook %s delivered to %s", row.id, row.endpoint)
            return
        attempts = row.attempts + 1
        due: float | None = time.time() + backoff(attempts)
        if due is not None and due > row.created_at + self.settings.webhook_retry_period:
            due = None
        await self.store.outbox_retry(row.id, attempts, due, error)
        if due is None:
            self._result("gave_up")
            log.error(
                "webhook %s to %s: giving up after %d attempts (%s)",
                row.id,
                row.endpoint,
                attempts,
                error,
            )
        else:
            self._result("failed")
            log.warning(
                "webhook %s to %s failed (%s); attempt %d in %.1f s",
                row.id,
                row.endpoint,
                error,
                attempts + 1,
                due - time.time(),
            )

    def _result(self, result: str) -> None:
        if self.sink is not None:
            self.sink.webhook_result(result)
