"""Webhooks: when a background response ends, every configured endpoint gets the event OpenAI
would send, signed so that the ``openai`` SDK's ``webhooks.unwrap`` accepts it unchanged.

Real ``outlast serve`` processes (SQLite and PostgreSQL), a real loopback HTTP receiver, and the
SDK's verification on every delivery.
"""

from __future__ import annotations

import base64
import secrets
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from openai import InvalidWebhookSignatureError, OpenAI
from openai.types.webhooks import (
    ResponseCancelledWebhookEvent,
    ResponseCompletedWebhookEvent,
    ResponseFailedWebhookEvent,
    ResponseIncompleteWebhookEvent,
)

from databases import only_on
from helpers import wait_ended
from outlast.config import ObserveSettings
from outlast.observe.base import RunInfo
from outlast.observe.webhooks import Webhooks, sign, signing_key
from serverproc import ServerProcess
from webhook_receiver import Delivery, Receiver

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
TERMINAL = ("completed", "failed", "cancelled", "incomplete")


def verifier(secret: str = SECRET) -> OpenAI:
    return OpenAI(api_key="unused", webhook_secret=secret)


def unwrap(delivery: Delivery, secret: str = SECRET) -> object:
    return verifier(secret).webhooks.unwrap(delivery.body, delivery.headers)


def serve_with_webhooks(
    make_server: Callable[..., ServerProcess], *urls: str, **kwargs: object
) -> ServerProcess:
    args: list[str] = []
    for url in urls:
        args += ["--webhook", url]
    return make_server(
        agent="scripted_agents:router",
        args=[*args, *kwargs.pop("args", [])],  # type: ignore[list-item]
        env={"OUTLAST_WEBHOOK_SECRET": SECRET},
        **kwargs,
    )


def test_each_ending_sends_one_verified_event(make_server: Callable[..., ServerProcess]) -> None:
    with Receiver() as receiver:
        server = serve_with_webhooks(make_server, receiver.url).start()
        with server.client() as client:
            completed = client.responses.create(model="count", input="n=3", background=True)
            failed = client.responses.create(model="fail", input="it broke", background=True)
            blocked = client.responses.create(model="block", input="wait", background=True)
            assert wait_ended(client, completed.id) == "completed"
            assert wait_ended(client, failed.id) == "failed"
            client.responses.cancel(blocked.id)
            assert wait_ended(client, blocked.id) == "cancelled"
            # A foreground response sends nothing (OpenAI sends webhooks for background ones).
            client.responses.create(model="count", input="n=2")
            marker = client.responses.create(model="count", input="n=1", background=True)
            assert wait_ended(client, marker.id) == "completed"
        deliveries = receiver.wait_for(lambda d: len(d) >= 4)
        server.stop()
        deliveries = receiver.all()
    events = {}
    for delivery in deliveries:
        assert delivery.headers["content-type"] == "application/json"
        event = unwrap(delivery)
        events[event.data.id] = event  # type: ignore[attr-defined]
    assert len(deliveries) == 4, "one event per background response, none for foreground"
    assert isinstance(events[completed.id], ResponseCompletedWebhookEvent)
    assert isinstance(events[failed.id], ResponseFailedWebhookEvent)
    assert isinstance(events[blocked.id], ResponseCancelledWebhookEvent)
    for event in events.values():
        assert event.object == "event"  # type: ignore[attr-defined]
        assert event.id.startswith("evt_")  # type: ignore[attr-defined]
        assert abs(event.created_at - time.time()) < 120  # type: ignore[attr-defined]
    assert len({d.headers["webhook-id"] for d in deliveries}) == 4


def test_a_failing_receiver_gets_the_event_later_with_the_same_webhook_id(
    make_server: Callable[..., ServerProcess],
) -> None:
    with Receiver(fail_first=2) as receiver:
        server = serve_with_webhooks(make_server, receiver.url).start()
        with server.client() as client:
            response = client.responses.create(model="count", input="n=2", background=True)
            assert wait_ended(client, response.id) == "completed"
        deliveries = receiver.wait_for(lambda d: any(x.status == 200 for x in d))
    assert [d.status for d in deliveries] == [500, 500, 200]
    assert len({d.headers["webhook-id"] for d in deliveries}) == 1
    assert len({d.body for d in deliveries}) == 1, "the same event on every attempt"
    for delivery in deliveries:
        assert unwrap(delivery).data.id == response.id  # type: ignore[attr-defined]


def test_an_event_pending_at_a_kill_is_delivered_after_restart(
    make_server: Callable[..., ServerProcess],
) -> None:
    with Receiver() as receiver:
        receiver.failing = True
        server = serve_with_webhooks(make_server, receiver.url).start()
        with server.client() as client:
            response = client.responses.create(model="count", input="n=2", background=True)
            assert wait_ended(client, response.id) == "completed"
        receiver.wait_for(lambda d: len(d) >= 1)
        server.kill()
        receiver.failing = False
        server.start()
        deliveries = receiver.wait_for(lambda d: any(x.status == 200 for x in d))
        server.stop()
    assert {d.headers["webhook-id"] for d in deliveries} == {deliveries[0].headers["webhook-id"]}
    event = unwrap(deliveries[-1])
    assert isinstance(event, ResponseCompletedWebhookEvent)
    assert event.data.id == response.id


@only_on("sqlite")  # on PostgreSQL a dead replica's runs are ended by the others (lease expiry)
def test_a_run_ended_by_crash_recovery_sends_response_failed(
    make_server: Callable[..., ServerProcess],
) -> None:
    with Receiver() as receiver:
        server = serve_with_webhooks(make_server, receiver.url).start()
        with server.client() as client:
            response = client.responses.create(model="block", input="wait", background=True)
            deadline = time.monotonic() + 10
            while client.responses.retrieve(response.id).status != "in_progress":
                assert time.monotonic() < deadline
                time.sleep(0.05)
        server.kill()
        server.start()
        deliveries = receiver.wait_for(lambda d: len(d) >= 1)
        server.stop()
    event = unwrap(deliveries[0])
    assert isinstance(event, ResponseFailedWebhookEvent)
    assert event.data.id == response.id


@only_on("sqlite")  # signing does not depend on the store
def test_a_wrong_secret_fails_verification(make_server: Callable[..., ServerProcess]) -> None:
    with Receiver() as receiver:
        server = serve_with_webhooks(make_server, receiver.url).start()
        with server.client() as client:
            client.responses.create(model="count", input="n=1", background=True)
        delivery = receiver.wait_for(lambda d: len(d) >= 1)[0]
    unwrap(delivery)  # the right secret verifies
    other = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    with pytest.raises(InvalidWebhookSignatureError):
        unwrap(delivery, secret=other)
    tampered = Delivery(delivery.body.replace(b"response.", b"response.x"), delivery.headers, 200)
    with pytest.raises(InvalidWebhookSignatureError):
        unwrap(tampered)


def test_every_endpoint_gets_its_own_delivery(make_server: Callable[..., ServerProcess]) -> None:
    with Receiver() as first, Receiver(fail_first=1) as second:
        server = serve_with_webhooks(make_server, first.url, second.url).start()
        with server.client() as client:
            response = client.responses.create(model="count", input="n=1", background=True)
        first.wait_for(lambda d: len(d) >= 1)
        second.wait_for(lambda d: any(x.status == 200 for x in d))
    for receiver in (first, second):
        event = unwrap(receiver.accepted()[0])
        assert event.data.id == response.id  # type: ignore[attr-defined]


@only_on("postgres")  # replicas share a PostgreSQL database
def test_replicas_deliver_each_event_once(make_server: Callable[..., ServerProcess]) -> None:
    with Receiver() as receiver:
        servers = [serve_with_webhooks(make_server, receiver.url).start() for _ in range(2)]
        ids = []
        for i in range(6):
            with servers[i % 2].client() as client:
                ids.append(client.responses.create(model="count", input="n=2", background=True).id)
        receiver.wait_for(lambda d: len(d) >= 6)
        with servers[0].client() as client:
            marker = client.responses.create(model="count", input="n=1", background=True).id
        deliveries = receiver.wait_for(lambda d: len(d) >= 7)
        for server in servers:
            server.stop()
    delivered = [unwrap(d).data.id for d in receiver.all()]  # type: ignore[attr-defined]
    assert sorted(delivered) == sorted([*ids, marker])
    assert len(deliveries) == 7


def test_webhooks_need_a_secret(tmp_path: object) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "outlast", "serve", "--webhook", "http://127.0.0.1:9/x"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2
    assert "--webhook-secret" in done.stderr


@pytest.mark.parametrize("status", TERMINAL)
def test_the_body_is_the_sdk_event_of_each_status(status: str) -> None:
    """Every terminal status (``incomplete`` too, which the SDK's types define) maps to the
    webhook event OpenAI sends, signed as the SDK verifies it."""
    hooks = Webhooks(
        ObserveSettings(webhooks=["http://127.0.0.1:9/x"], webhook_secret=SECRET),
        None,
        None,  # type: ignore[arg-type]
    )
    [row] = hooks.outbox(RunInfo("resp_1", "m", True, time.time()), status)
    timestamp = str(int(time.time()))
    headers = {
        "webhook-id": row.id,
        "webhook-timestamp": timestamp,
        "webhook-signature": sign(signing_key(SECRET), row.id, timestamp, row.payload),
    }
    event = verifier().webhooks.unwrap(row.payload, headers)
    expected = {
        "completed": ResponseCompletedWebhookEvent,
        "failed": ResponseFailedWebhookEvent,
        "cancelled": ResponseCancelledWebhookEvent,
        "incomplete": ResponseIncompleteWebhookEvent,
    }[status]
    assert isinstance(event, expected)
    assert event.type == f"response.{status}"
    assert event.data.id == "resp_1"
    assert not hooks.outbox(RunInfo("resp_2", "m", False, time.time()), status)
