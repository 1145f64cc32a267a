"""Agent Framework against outlast: its stock client works, and our drop-in resumes exactly.

Microsoft Agent Framework's ``OpenAIChatClient`` (package ``agent-framework-openai``) runs
against outlast unchanged with ``background=True``: it polls with continuation tokens until the
run is done, and it resumes a stream from a token, but by replaying the stream from its first
event, so the caller sees the text again. ``outlast.client.agent_framework.OutlastChatClient``
puts the sequence number in its tokens and resumes right after it: no text twice. It also
reconnects a dropped background stream by itself, where the stock client raises.

"Shown text" below is what a streaming UI prints: the text of each update's appended contents
(``merge_mode != "replace"``; the stock client also sends the whole text once more at the end of
a message, to replace what was appended, which a UI does not print again).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_framework import AgentResponseUpdate
from agent_framework.exceptions import ChatClientException
from agent_framework.openai import OpenAIChatClient

from databases import TestDatabase, fresh_database
from faultproxy import Cut, Fault, FaultProxy
from outlast.client import Backoff
from outlast.client.agent_framework import OutlastChatClient
from serverproc import ServerProcess

N = 40
PROMPT = f"n={N} delay=0.01"
FULL = "".join(f"{i} " for i in range(N))


@pytest.fixture
def database(tmp_path: Path) -> Iterator[TestDatabase]:
    """The clients do not depend on the backend: SQLite is enough here."""
    with fresh_database("sqlite", tmp_path) as db:
        yield db


@pytest.fixture(scope="module")
def module_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDatabase]:
    """The module's shared server is on SQLite too; its tests look only at their own runs."""
    with fresh_database("sqlite", tmp_path_factory.mktemp("sqlite")) as db:
        yield db


def stock(server: ServerProcess, base_url: str | None = None) -> OpenAIChatClient[Any]:
    return OpenAIChatClient(model="count", base_url=base_url or server.base_url, api_key="k")


def ours(server: ServerProcess, base_url: str | None = None) -> OutlastChatClient:
    return OutlastChatClient(
        model="count",
        base_url=base_url or server.base_url,
        api_key="k",
        reconnect=Backoff(initial=0.05, maximum=0.5),
    )


def shown(updates: list[AgentResponseUpdate]) -> str:
    return "".join(
        content.text or ""
        for update in updates
        for content in update.contents
        if content.type == "text" and content.merge_mode != "replace"
    )


def event_of(update: AgentResponseUpdate) -> Any:
    """The ``openai`` event behind an agent update."""
    return update.raw_representation.raw_representation  # type: ignore[union-attr]


async def read_part(agent: Any, deltas: int) -> tuple[list[AgentResponseUpdate], Any]:
    """Start a background streaming run, read until ``deltas`` pieces of text, stop reading.

    Returns the updates read and the last continuation token they carried.
    """
    updates: list[AgentResponseUpdate] = []
    token = None
    async with agent.run(PROMPT, stream=True, options={"background": True}) as stream:
        async for update in stream:
            updates.append(update)
            token = update.continuation_token or token
            if event_of(update).type == "response.output_text.delta":
                deltas -= 1
                if deltas == 0:
                    break
    return updates, token


async def resume(agent: Any, token: Any) -> list[AgentResponseUpdate]:
    async with agent.run(stream=True, options={"continuation_token": token}) as stream:
        return [update async for update in stream]


async def test_the_stock_client_polls_a_background_run_with_tokens_until_done(
    shared_server: ServerProcess,
) -> None:
    agent = stock(shared_server).as_agent()
    response = await agent.run(PROMPT, options={"background": True})
    token = response.continuation_token
    assert token is not None and token["response_id"].startswith("resp_")
    polls = 0
    while token is not None:
        token = json.loads(json.dumps(token))  # a token survives being stored as JSON
        response = await agent.run(options={"continuation_token": token})
        token = response.continuation_token
        polls += 1
    assert polls >= 1
    assert response.text == FULL


async def test_the_stock_client_resumes_a_stream_from_a_token_by_replaying_it(
    shared_server: ServerProcess,
) -> None:
    agent = stock(shared_server).as_agent()
    first, token = await read_part(agent, deltas=10)
    assert token is not None and set(token) == {"response_id"}
    rest = await resume(agent, token)
    assert shown(first) == "".join(f"{i} " for i in range(10))
    # The resumed stream starts over: the caller sees the first ten numbers twice.
    assert event_of(rest[0]).sequence_number == 0
    assert shown(rest) == FULL
    assert shown(first) + shown(rest) != FULL


async def test_the_drop_in_resumes_exactly_where_the_stock_client_replays(
    shared_server: ServerProcess,
) -> None:
    """The same token, resumed by both: the stock client replays, ours continues."""
    mine = ours(shared_server).as_agent()
    first, token = await read_part(mine, deltas=10)
    assert token["sequence_number"] == event_of(first[-1]).sequence_number
    token = json.loads(json.dumps(token))
    exact = await resume(mine, dict(token))
    replayed = await resume(stock(shared_server).as_agent(), dict(token))
    # Ours: the first event after the token, and the text continues without a repeat.
    assert event_of(exact[0]).sequence_number == token["sequence_number"] + 1
    assert shown(first) + shown(exact) == FULL
    # Stock, with that very token: from event 0 again, so the text repeats.
    assert event_of(replayed[0]).sequence_number == 0
    assert shown(first) + shown(replayed) == shown(first) + FULL
    # The run's final response is whole either way; the finished stream leaves no token.
    assert exact[-1].continuation_token is None


async def test_every_update_of_the_drop_in_carries_a_resumable_token(
    shared_server: ServerProcess,
) -> None:
    agent = ours(shared_server).as_agent()
    updates = []
    async with agent.run(PROMPT, stream=True, options={"background": True}) as stream:
        updates = [update async for update in stream]
        final = await stream.get_final_response()
    assert final.text == FULL
    assert final.continuation_token is None
    running, last = updates[:-1], updates[-1]
    assert all(
        u.continuation_token is not None
        and u.continuation_token["sequence_number"] == event_of(u).sequence_number
        for u in running
    )
    assert event_of(last).type == "response.completed" and last.continuation_token is None
    # From a token in the middle, a resume yields exactly the rest.
    middle = running[len(running) // 2]
    rest = await resume(agent, middle.continuation_token)
    assert [event_of(u).sequence_number for u in rest] == [
        event_of(u).sequence_number for u in updates[len(running) // 2 + 1 :]
    ]


async def test_the_drop_in_polls_with_its_tokens_as_the_stock_client_does(
    shared_server: ServerProcess,
) -> None:
    agent = ours(shared_server).as_agent()
    _, token = await read_part(agent, deltas=3)
    response = await agent.run(options={"continuation_token": token})
    while response.continuation_token is not None:
        response = await agent.run(options={"continuation_token": response.continuation_token})
    assert response.text == FULL


def cut_streams(seed: int) -> Any:
    rng = random.Random(seed)

    def plan(number: int, request_line: str) -> Fault | None:
        if number >= 30:
            return None
        # Past the first ~2.5 kB (the created, queued and in_progress snapshots), so that some
        # text gets through before the first cut.
        return Cut(rng.randint(2500, 7000), reset=rng.random() < 0.5)

    return plan


async def test_a_dropped_background_stream_reconnects_by_itself_in_the_drop_in(
    shared_server: ServerProcess,
) -> None:
    with FaultProxy(shared_server.port, cut_streams(3)) as proxy:
        agent = ours(shared_server, proxy.base_url).as_agent()
        async with agent.run(PROMPT, stream=True, options={"background": True}) as stream:
            updates = [update async for update in stream]
        assert len(proxy.faults) >= 2
    seqs = [event_of(u).sequence_number for u in updates]
    assert seqs == list(range(len(seqs)))
    assert shown(updates) == FULL


async def test_the_stock_client_gives_up_on_a_dropped_stream(shared_server: ServerProcess) -> None:
    with FaultProxy(shared_server.port, cut_streams(3)) as proxy:
        agent = stock(shared_server, proxy.base_url).as_agent()
        updates: list[AgentResponseUpdate] = []
        with pytest.raises(ChatClientException):
            async with agent.run(PROMPT, stream=True, options={"background": True}) as stream:
                async for update in stream:
                    updates.append(update)
    assert 0 < len(shown(updates)) < len(FULL)
