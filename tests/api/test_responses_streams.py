"""Reading a response (contract: docs/responses-contract.md): polling a running one, replaying its
events from sequence 0, resuming with ``starting_after`` (raw, with the SDK, and with the SDK's
``responses.stream(response_id=...)`` helper), following a running response live, resuming a
dropped stream without gap or duplicate, several concurrent followers, many fast deltas, and why a
foreground response cannot be streamed by ``GET``.

Server: ``outlast serve --agent scripted_agents:router`` (tests/support/scripted_agents.py): the
request's ``model`` picks the agent (echo, count, fail, block, tools, context). It is one
in-process server shared by the tests (tests/api/conftest.py), so each test checks only the
responses it created. Every event and response object is validated against the installed SDK's
own types (see tests/api/responses_support.py). On SQLite; the core lifecycle runs on
PostgreSQL too (``ON_EVERY_BACKEND``).
"""

from __future__ import annotations

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
    TERMINAL_STATUSES,
    WAIT,
    api_error,
    as_dicts,
    assert_gapless,
    check_stream_invariants,
    count_text,
    create_background,
    finished_background,
    iter_sse,
    raw_replay,
    read_raw_stream,
    seqs_of,
    types_of,
    wait_until,
    wait_until_done,
)


@ON_EVERY_BACKEND
def test_polling_a_running_response_shows_the_output_so_far(client: OpenAI) -> None:
    created = create_background(client, "count", "n=50 delay=0.05")
    full = count_text(50)
    seen_partial: list[Response] = []

    def partial_or_done() -> bool:
        response = client.responses.retrieve(created.id)
        if response.status == "in_progress" and response.output_text:
            seen_partial.append(response)
        return bool(seen_partial) or response.status in TERMINAL_STATUSES

    wait_until(partial_or_done, what="a running response with some output")
    assert seen_partial, "the response finished before any poll saw it running with output"
    partial = seen_partial[0]
    assert full.startswith(partial.output_text)
    assert len(partial.output_text) < len(full)
    assert partial.output[0].type == "message"
    assert partial.output[0].status == "in_progress"

    done = wait_until_done(client, created.id)
    assert done.status == "completed"
    assert done.output_text == full


@ON_EVERY_BACKEND
def test_get_stream_replays_every_event_from_sequence_zero(
    client: OpenAI, server: InProcessServer
) -> None:
    live = read_raw_stream(
        server,
        "POST",
        "/v1/responses",
        json_body={
            "model": "echo",
            "input": "replay me please",
            "background": True,
            "stream": True,
        },
    )
    response_id = live[0]["response"]["id"]
    replay = raw_replay(server, response_id)
    assert replay == live, "a replay must carry the same events with the same numbers"

    sdk_replay = list(client.responses.retrieve(response_id, stream=True))
    assert types_of(sdk_replay) == types_of(live)
    assert_gapless(sdk_replay)
    assert sdk_replay[-1].type == "response.completed"
    assert sdk_replay[-1].response.output_text == "replay me please"


def test_background_response_created_without_stream_can_be_streamed(
    client: OpenAI, server: InProcessServer
) -> None:
    done = finished_background(client, "echo", "no stream at creation")
    events = list(client.responses.retrieve(done.id, stream=True))
    assert types_of(events)[:3] == ["response.created", "response.queued", "response.in_progress"]
    assert events[-1].type == "response.completed"
    check_stream_invariants(events)
    check_stream_invariants(raw_replay(server, done.id))


@ON_EVERY_BACKEND
@pytest.mark.parametrize("starting_after", [0, 2, 4, 6])
def test_get_stream_with_starting_after_skips_events_up_to_that_number(
    client: OpenAI, server: InProcessServer, starting_after: int
) -> None:
    done = finished_background(client, "echo", "a b c d")
    full = raw_replay(server, done.id)
    resumed = list(client.responses.retrieve(done.id, stream=True, starting_after=starting_after))
    assert seqs_of(resumed) == seqs_of(full)[starting_after + 1 :]
    assert as_dicts(resumed) == full[starting_after + 1 :]
    assert raw_replay(server, done.id, starting_after) == full[starting_after + 1 :]


@ON_EVERY_BACKEND
def test_get_stream_of_a_running_response_replays_then_follows_live(client: OpenAI) -> None:
    created = create_background(client, "count", "n=30 delay=0.05")
    events = list(client.responses.retrieve(created.id, stream=True, timeout=WAIT))
    assert_gapless(events)
    check_stream_invariants(events)
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == count_text(30)


def test_get_stream_with_starting_after_on_a_running_response_waits_for_newer_events(
    client: OpenAI,
) -> None:
    created = create_background(client, "count", "n=30 delay=0.05")
    events = list(
        client.responses.retrieve(created.id, stream=True, starting_after=5, timeout=WAIT)
    )
    assert events, "expected the events after number 5"
    assert_gapless(events, start=6)
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == count_text(30)


@pytest.mark.parametrize("beyond", [0, 1, 1000])
def test_starting_after_at_or_beyond_the_last_event_of_a_finished_response_is_an_empty_stream(
    client: OpenAI, server: InProcessServer, beyond: int
) -> None:
    done = finished_background(client)
    last = raw_replay(server, done.id)[-1]["sequence_number"]
    events = list(
        client.responses.retrieve(done.id, stream=True, starting_after=last + beyond, timeout=10)
    )
    assert events == []
    assert raw_replay(server, done.id, last + beyond) == []
    # No event, but the response has ended, and the stream says so: [DONE] is all it holds.
    reply = httpx.get(
        f"{server.base_url}/responses/{done.id}",
        params={"stream": "true", "starting_after": last + beyond},
        headers=AUTH,
        timeout=WAIT,
    )
    assert reply.status_code == 200
    assert reply.content == b"data: [DONE]\n\n"


@pytest.mark.parametrize("starting_after", [None, 0, 3, 7])
def test_sdk_stream_helper_resumes_a_finished_response_and_returns_its_final_response(
    client: OpenAI, server: InProcessServer, starting_after: int | None
) -> None:
    done = finished_background(client, "echo", "resume with the helper")
    kwargs: dict[str, Any] = {} if starting_after is None else {"starting_after": starting_after}
    with client.responses.stream(response_id=done.id, **kwargs) as stream:
        events = list(stream)
        final = stream.get_final_response()
    first = 0 if starting_after is None else starting_after + 1
    assert events[0].sequence_number == first
    assert_gapless(events, start=first)
    assert events[-1].type == "response.completed"
    assert final.id == done.id
    assert final.status == "completed"
    assert final.output_text == "resume with the helper"


def test_sdk_stream_helper_follows_a_running_response(client: OpenAI) -> None:
    created = create_background(client, "count", "n=20 delay=0.05")
    with client.responses.stream(response_id=created.id, starting_after=2, timeout=WAIT) as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert final.output_text == count_text(20)
    assert count_text(20).endswith(text)


def test_sdk_stream_helper_creates_and_streams_a_background_response(client: OpenAI) -> None:
    with client.responses.stream(model="echo", input="helper create", background=True) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert events[0].type == "response.created"
    assert final.output_text == "helper create"
    assert final.background is True


async def test_async_client_runs_concurrent_background_streams(server: InProcessServer) -> None:
    import asyncio

    async with server.async_client() as aclient:

        async def one(i: int) -> str:
            stream = await aclient.responses.create(
                model="echo", input=f"concurrent {i}", background=True, stream=True
            )
            events = [e async for e in stream]
            check_stream_invariants(events)
            assert events[-1].type == "response.completed"
            return events[-1].response.output_text

        texts = await asyncio.gather(*(one(i) for i in range(5)))
    assert texts == [f"concurrent {i}" for i in range(5)]


@ON_EVERY_BACKEND
@pytest.mark.parametrize("resume_with", ["get", "sdk-helper"])
def test_a_dropped_background_stream_resumes_gaplessly_from_the_last_seen_event(
    client: OpenAI, server: InProcessServer, resume_with: str
) -> None:
    seen: list[dict[str, Any]] = []
    with (
        httpx.Client(timeout=WAIT) as http,
        http.stream(
            "POST",
            f"{server.base_url}/responses",
            json={"model": "count", "input": "n=30 delay=0.03", "background": True, "stream": True},
            headers=AUTH,
        ) as reply,
    ):
        for _, data in iter_sse(reply):
            seen.append(data)
            if data["sequence_number"] == 6:
                break
    response_id = seen[0]["response"]["id"]
    last = seen[-1]["sequence_number"]
    if resume_with == "get":
        rest = as_dicts(
            list(client.responses.retrieve(response_id, stream=True, starting_after=last))
        )
    else:
        with client.responses.stream(response_id=response_id, starting_after=last) as stream:
            rest = as_dicts(list(stream))
            assert stream.get_final_response().output_text == count_text(30)
    assert seqs_of(rest)[0] == last + 1
    combined = seen + rest
    assert_gapless(combined)
    assert rest[-1]["type"] == "response.completed"
    assert seqs_of(raw_replay(server, response_id)) == seqs_of(combined)
    text = "".join(e["delta"] for e in combined if e["type"] == "response.output_text.delta")
    assert text == count_text(30)


def test_streaming_a_foreground_response_via_get_is_rejected(client: OpenAI) -> None:
    response = client.responses.create(model="echo", input="foreground")
    with pytest.raises(openai.BadRequestError) as info:
        list(client.responses.retrieve(response.id, stream=True))
    assert api_error(info.value) == {
        "message": "This response cannot be streamed because it was not created with background=true.",
        "type": "invalid_request_error",
        "param": "stream",
        "code": "invalid_request_error",
    }


def test_streaming_a_foreground_streamed_response_via_get_is_rejected(client: OpenAI) -> None:
    events = list(client.responses.create(model="echo", input="fg", stream=True))
    with pytest.raises(openai.BadRequestError) as info:
        list(client.responses.retrieve(events[0].response.id, stream=True))
    assert api_error(info.value)["param"] == "stream"


@ON_EVERY_BACKEND
def test_many_fast_deltas_keep_gapless_numbers_and_the_exact_text(
    client: OpenAI, server: InProcessServer
) -> None:
    events = list(
        client.responses.create(model="count", input="n=500", background=True, stream=True)
    )
    check_stream_invariants(events)
    assert events[-1].response.output_text == count_text(500)
    assert len([e for e in events if e.type == "response.output_text.delta"]) == 500
    replay = raw_replay(server, events[0].response.id)
    assert seqs_of(replay) == seqs_of(events)
    assert wait_until_done(client, events[0].response.id).output_text == count_text(500)


@ON_EVERY_BACKEND
def test_concurrent_followers_of_a_running_response_see_the_same_events(
    server: InProcessServer, client: OpenAI
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    created = create_background(client, "count", "n=30 delay=0.03")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: raw_replay(server, created.id), range(4)))
    for events in results:
        check_stream_invariants(events)
        assert events == results[0]
    assert results[0][-1]["response"]["output"][0]["content"][0]["text"] == count_text(30)
