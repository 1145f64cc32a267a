"""``outlast.client``: start, stream, resume, poll, wait, result, cancel, and their errors.

Against a real ``outlast serve`` hosting the test agents (tests/support/scripted_agents.py). The client uses only
the standard Responses endpoints (plus the listing extension for ``list_responses``), so each
behaviour here is also what it does against OpenAI's API.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from databases import TestDatabase, fresh_database
from outlast.client import (
    AsyncOutlastClient,
    Backoff,
    ContinuationToken,
    OutlastClient,
    ReconnectFailed,
    RunCancelled,
    RunFailed,
    RunNotFound,
    WaitTimeout,
)
from serverproc import ServerProcess, free_port

FAST = Backoff(initial=0.05, maximum=0.5)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[TestDatabase]:
    """The client does not depend on the backend: SQLite is enough here."""
    with fresh_database("sqlite", tmp_path) as db:
        yield db


@pytest.fixture(scope="module")
def module_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDatabase]:
    """The module's shared server is on SQLite too."""
    with fresh_database("sqlite", tmp_path_factory.mktemp("sqlite")) as db:
        yield db


@pytest.fixture
def oc(shared_server: ServerProcess) -> Iterator[OutlastClient]:
    """A client of the module's shared server (tests that need a server of their own make it)."""
    with OutlastClient(
        openai_client=shared_server.client(), reconnect=FAST, polling=FAST, give_up_after=30
    ) as c:
        yield c


def count_text(n: int) -> str:
    return "".join(f"{i} " for i in range(n))


def deltas(events: list[Any]) -> str:
    return "".join(e.delta for e in events if e.type == "response.output_text.delta")


# -- start, wait, result -------------------------------------------------------------------------


def test_start_creates_a_background_run_and_a_token_from_its_first_event(
    oc: OutlastClient,
) -> None:
    response, token = oc.start(model="count", input="n=5")
    assert response.background is True
    assert response.status == "queued"
    assert token == ContinuationToken(response.id, -1)
    final = oc.result(token)
    assert final.status == "completed"
    assert final.output_text == count_text(5)


def test_wait_returns_a_failed_run_and_result_raises_run_failed_with_its_message(
    oc: OutlastClient,
) -> None:
    _, token = oc.start(model="fail", input="the tool broke")
    assert oc.wait(token).status == "failed"
    with pytest.raises(RunFailed) as info:
        oc.result(token)
    assert info.value.message == "the tool broke"
    assert info.value.response.id == token.response_id


def test_wait_gives_up_after_its_timeout_and_the_run_goes_on(oc: OutlastClient) -> None:
    _, token = oc.start(model="block", input="wait for me")
    with pytest.raises(WaitTimeout) as info:
        oc.wait(token, timeout=0.5)
    assert info.value.token == token
    assert info.value.response is not None
    assert info.value.response.status in ("queued", "in_progress")
    assert oc.poll(token).status == "in_progress"
    oc.cancel(token)


def test_cancel_stops_a_run_and_result_raises_run_cancelled(oc: OutlastClient) -> None:
    stream = oc.stream(model="block", input="block")
    events = []
    for event in stream:
        events.append(event)
        if event.type == "response.output_text.delta":
            break
    stream.close()
    assert stream.token is not None
    cancelled = oc.cancel(stream.token)
    assert cancelled.status == "cancelled"
    assert oc.cancel(stream.token).status == "cancelled"  # idempotent
    with pytest.raises(RunCancelled):
        oc.result(stream.token)
    # Resuming shows the rest of the log: it ends with the cancel event outlast documents.
    rest = list(oc.resume(stream.token))
    assert rest[-1].type == "response.incomplete"
    assert rest[-1].response.status == "cancelled"


def test_an_unknown_response_is_run_not_found_everywhere(oc: OutlastClient) -> None:
    token = ContinuationToken("resp_does_not_exist", 3)
    for action in (oc.poll, oc.wait, oc.cancel, lambda t: list(oc.resume(t))):
        with pytest.raises(RunNotFound) as info:
            action(token)
        assert info.value.response_id == "resp_does_not_exist"


def test_another_keys_response_is_not_found(make_server: Any) -> None:
    server = make_server(
        agent="scripted_agents:router", args=["--api-key", "a", "--api-key", "b"]
    ).start()
    with (
        OutlastClient(openai_client=server.client(api_key="a")) as mine,
        OutlastClient(openai_client=server.client(api_key="b")) as theirs,
    ):
        _, token = mine.start(model="count", input="n=3")
        assert mine.result(token).output_text == count_text(3)
        with pytest.raises(RunNotFound):
            list(theirs.resume(token))
        with pytest.raises(RunNotFound):
            theirs.cancel(token)


# -- stream and resume ----------------------------------------------------------------------------


def test_the_token_at_each_event_resumes_right_after_it(oc: OutlastClient) -> None:
    stream = oc.stream(model="count", input="n=30 delay=0.01")
    seen: list[Any] = []
    tokens: list[ContinuationToken] = []
    for event in stream:
        seen.append(event)
        response_id = seen[0].response.id  # response.created names the response
        assert stream.token == ContinuationToken(response_id, event.sequence_number)
        tokens.append(stream.token)
    assert stream.finished
    assert stream.response is not None and stream.response.status == "completed"
    # From any of those tokens, a resume yields exactly the events after it.
    for token in tokens[::7]:
        rest = list(oc.resume(token))
        assert [e.to_dict() for e in rest] == [
            e.to_dict() for e in seen[token.sequence_number + 1 :]
        ]


def test_resuming_from_the_last_event_yields_nothing_and_knows_the_outcome(
    oc: OutlastClient,
) -> None:
    stream = oc.stream(model="count", input="n=3")
    events = list(stream)
    assert stream.token is not None
    again = oc.resume(stream.token)
    assert list(again) == []
    assert again.finished
    assert again.response is not None and again.response.output_text == count_text(3)
    assert again.result().status == "completed"
    assert events[-1].type == "response.completed"


def test_a_stream_result_raises_for_a_failed_run(oc: OutlastClient) -> None:
    with pytest.raises(RunFailed) as info:
        oc.stream(model="fail", input="no luck").result()
    assert info.value.message == "no luck"


def test_the_sdk_stream_helper_continues_from_a_client_token(
    oc: OutlastClient, shared_client: OpenAI
) -> None:
    """A token is plain data: the ``openai`` SDK's own helper resumes from it as well."""
    stream = oc.stream(model="count", input="n=20 delay=0.01")
    first = [event for _, event in zip(range(12), stream, strict=False)]
    stream.close()
    token = stream.token
    assert token is not None and token.sequence_number == 11
    with shared_client.responses.stream(
        response_id=token.response_id, starting_after=token.sequence_number
    ) as helper:
        rest = list(helper)
        final = helper.get_final_response()
    assert [e.sequence_number for e in rest] == list(range(12, 12 + len(rest)))
    assert deltas(first) + deltas(rest) == count_text(20)
    assert final.output_text == count_text(20)


def test_a_stream_gives_up_with_its_token_when_the_server_stays_away(make_server: Any) -> None:
    server = make_server(agent="scripted_agents:router", args=["--drain-timeout", "1"]).start()
    with OutlastClient(openai_client=server.client(), reconnect=FAST, give_up_after=1.0) as client:
        stream = client.stream(model="count", input="n=100 delay=0.05")
        with pytest.raises(ReconnectFailed) as info:
            for event in stream:
                if event.sequence_number == 10:
                    server.kill()
    assert info.value.token is not None
    assert info.value.token.sequence_number >= 10
    assert stream.reconnects >= 1


def test_start_waits_for_a_server_that_is_not_listening_yet(make_server: Any) -> None:
    """A create that never reached a server is safe to send again (nothing was made)."""
    server = make_server(agent="scripted_agents:router", port=free_port())
    later = threading.Timer(1.0, server.start)
    later.start()
    try:
        with OutlastClient(
            base_url=server.base_url, api_key="k", reconnect=FAST, give_up_after=60
        ) as client:
            _, token = client.start(model="count", input="n=2")
            assert client.result(token).output_text == count_text(2)
    finally:
        later.join()


# -- the async client ----------------------------------------------------------------------------


async def test_the_async_client_does_the_same(shared_server: ServerProcess) -> None:
    async with AsyncOutlastClient(
        openai_client=shared_server.async_client(), reconnect=FAST, polling=FAST
    ) as client:
        stream = client.stream(model="count", input="n=10 delay=0.01")
        first = []
        async for event in stream:
            first.append(event)
            if len(first) == 8:
                break
        await stream.close()
        assert stream.token is not None
        rest = [event async for event in client.resume(str(stream.token))]
        assert [e.sequence_number for e in first + rest] == list(range(len(first) + len(rest)))
        assert deltas(first + rest) == count_text(10)
        assert (await client.result(stream.token)).output_text == count_text(10)
        _, token = await client.start(model="fail", input="async failure")
        with pytest.raises(RunFailed):
            await client.result(token)
        with pytest.raises(RunNotFound):
            await client.poll("resp_missing")
