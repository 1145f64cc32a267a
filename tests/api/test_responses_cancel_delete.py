"""Cancelling and deleting responses (contract: docs/responses-contract.md): cancel interrupts the
agent, is idempotent on any ended response, keeps a queued run from ever starting, ends open
streams with ``response.incomplete`` (status ``cancelled``) and is refused for a foreground
response; delete answers a deleted object, stops a running run, and then the response is gone
from every endpoint. (tests/e2e/test_cancel.py tests cancellation too, on both backends.)

Server: ``outlast serve --agent scripted_agents:router`` (tests/support/scripted_agents.py): the
request's ``model`` picks the agent (echo, count, fail, block, tools, context). It is one
in-process server shared by the tests (tests/api/conftest.py), so each test checks only the
responses it created. Every event and response object is validated against the installed SDK's
own types (see tests/api/responses_support.py). On SQLite; the core lifecycle runs on
PostgreSQL too (``ON_EVERY_BACKEND``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from inprocess import InProcessServer
from openai import OpenAI
from openai.types.responses import Response
from responses_support import (
    AUTH,
    ON_EVERY_BACKEND,
    WAIT,
    api_error,
    check_stream_invariants,
    create_background,
    finished_background,
    raw_replay,
    raw_response,
    seqs_of,
    start_blocked,
    types_of,
    wait_for_file,
    wait_until_done,
)


@ON_EVERY_BACKEND
def test_cancel_stops_a_running_response_and_interrupts_the_agent(
    client: OpenAI, server: InProcessServer, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    created = start_blocked(client, marker)
    cancelled = client.responses.cancel(created.id)
    assert cancelled.id == created.id
    assert cancelled.status == "cancelled"
    wait_for_file(marker, "cancelled")
    assert client.responses.retrieve(created.id).status == "cancelled"
    assert raw_response(server, created.id).status == "cancelled"


def test_cancel_is_idempotent_on_a_cancelled_response(client: OpenAI, tmp_path: Path) -> None:
    created = start_blocked(client, tmp_path / "marker")
    first = client.responses.cancel(created.id)
    assert first.status == "cancelled"
    wait_until_done(client, created.id)
    second = client.responses.with_raw_response.cancel(created.id)
    assert second.status_code == 200
    again = second.parse()
    assert again.status == "cancelled"
    assert again == client.responses.retrieve(created.id)


def test_cancel_is_idempotent_on_a_finished_response(client: OpenAI) -> None:
    done = finished_background(client)
    reply = client.responses.with_raw_response.cancel(done.id)
    assert reply.status_code == 200
    assert reply.parse() == done
    assert client.responses.retrieve(done.id) == done


def test_cancel_is_idempotent_on_a_failed_response(client: OpenAI) -> None:
    created = create_background(client, "fail", "boom-idempotent")
    failed = wait_until_done(client, created.id)
    assert failed.status == "failed"
    assert client.responses.cancel(created.id) == failed


def test_cancel_of_a_queued_response_means_it_never_starts(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server = make_server("--max-running", "1")
    with server.client() as client:
        first = start_blocked(client, tmp_path / "first")
        second = create_background(client, "block", f"marker={tmp_path / 'second'}")
        assert client.responses.retrieve(second.id).status == "queued"
        cancelled = client.responses.cancel(second.id)
        assert cancelled.status == "cancelled"
        assert client.responses.cancel(first.id).status == "cancelled"
        # the slot is free again: a later run starts and finishes
        later = finished_background(client, "echo", "after the queue")
        assert later.output_text == "after the queue"
        assert not (tmp_path / "second").exists(), "a cancelled queued run was started"
        assert client.responses.retrieve(second.id).status == "cancelled"
        events = list(client.responses.retrieve(second.id, stream=True, timeout=WAIT))
        assert types_of(events) == ["response.created", "response.queued", "response.incomplete"]
        assert events[-1].response.status == "cancelled"


@ON_EVERY_BACKEND
def test_open_stream_of_a_cancelled_response_ends_with_response_incomplete_status_cancelled(
    client: OpenAI, server: InProcessServer, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    stream = client.responses.create(
        model="block", input=f"marker={marker}", background=True, stream=True, timeout=WAIT
    )
    events: list[Any] = []
    for event in stream:
        events.append(event)
        if event.type == "response.output_text.delta":
            client.responses.cancel(events[0].response.id)
    # the SDK did not raise, and the stream ended by itself
    last = events[-1]
    assert last.type == "response.incomplete"
    assert last.response.status == "cancelled"
    check_stream_invariants(events)
    response_id = events[0].response.id
    wait_for_file(marker, "cancelled")

    replay = raw_replay(server, response_id)
    assert replay[-1]["type"] == "response.incomplete"
    assert replay[-1]["response"]["status"] == "cancelled"
    assert seqs_of(replay) == seqs_of(events)
    assert Response.model_validate(replay[-1]["response"]) == raw_response(server, response_id)


@ON_EVERY_BACKEND
def test_get_stream_follower_of_a_running_response_ends_when_it_is_cancelled(
    client: OpenAI, tmp_path: Path
) -> None:
    created = start_blocked(client, tmp_path / "marker")
    stream = client.responses.retrieve(created.id, stream=True, timeout=WAIT)
    events: list[Any] = []
    for event in stream:
        events.append(event)
        if event.type == "response.output_text.delta":
            client.responses.cancel(created.id)
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.status == "cancelled"
    check_stream_invariants(events)


def test_sdk_stream_helper_does_not_raise_on_a_cancelled_response(
    client: OpenAI, tmp_path: Path
) -> None:
    created = start_blocked(client, tmp_path / "marker")
    client.responses.cancel(created.id)
    wait_until_done(client, created.id)
    with client.responses.stream(response_id=created.id, timeout=WAIT) as stream:
        events = list(stream)
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.status == "cancelled"


def test_cancel_of_a_foreground_response_is_rejected(client: OpenAI) -> None:
    response = client.responses.create(model="echo", input="foreground")
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.cancel(response.id)
    assert info.value.status_code == 400
    error = api_error(info.value)
    assert error["type"] == "invalid_request_error"
    assert "background" in error["message"]
    assert client.responses.retrieve(response.id).status == "completed"


@ON_EVERY_BACKEND
def test_delete_returns_a_deleted_object_and_then_the_response_is_gone(
    client: OpenAI, server: InProcessServer
) -> None:
    done = finished_background(client)
    reply = httpx.delete(f"{server.base_url}/responses/{done.id}", headers=AUTH, timeout=WAIT)
    assert reply.status_code == 200
    assert reply.json() == {"id": done.id, "object": "response.deleted", "deleted": True}

    with pytest.raises(openai.NotFoundError) as info:
        client.responses.retrieve(done.id)
    assert api_error(info.value)["code"] == "response_not_found"
    with pytest.raises(openai.NotFoundError):
        list(client.responses.retrieve(done.id, stream=True))
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list(done.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.cancel(done.id)
    again = httpx.delete(f"{server.base_url}/responses/{done.id}", headers=AUTH, timeout=WAIT)
    assert again.status_code == 404
    with pytest.raises(openai.BadRequestError) as chained:
        client.responses.create(model="echo", input="x", previous_response_id=done.id)
    assert api_error(chained.value)["code"] == "previous_response_not_found"


def test_delete_through_the_sdk_succeeds(client: OpenAI) -> None:
    response = client.responses.create(model="echo", input="delete me")
    assert client.responses.delete(response.id) is None
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


@ON_EVERY_BACKEND
def test_deleting_a_running_response_stops_its_run(
    client: OpenAI, server: InProcessServer, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    created = start_blocked(client, marker)
    reply = httpx.delete(f"{server.base_url}/responses/{created.id}", headers=AUTH, timeout=WAIT)
    assert reply.status_code == 200
    assert reply.json() == {"id": created.id, "object": "response.deleted", "deleted": True}
    wait_for_file(marker, "cancelled")
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    assert finished_background(client, "echo", "still fine").output_text == "still fine"
