"""Microsoft Agent Framework's ``A2AAgent`` (package ``agent-framework-a2a``) against outlast:
a plain run, a background run and its continuation token, polling, resuming a stream from the
token, a conversation kept in a session, and a finished task, whose stream cannot be resumed
(the spec's error), read with ``poll_task`` (GetTask) instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from a2a.client import A2ACardResolver
from a2a.utils.errors import UnsupportedOperationError
from agent_framework_a2a import A2AAgent, A2AContinuationToken

from a2a_support import EVENTUALLY, TIMEOUT, count_text
from serverproc import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One A2A server for the module, on SQLite: the client's behaviour does not depend on the
    backend (test_a2a covers the A2A transport on both), and each test reads only its own tasks."""
    directory = tmp_path_factory.mktemp("a2a")
    server = ServerProcess(
        directory / "outlast.db",
        agent="a2a_agents:router",
        args=["--drain-timeout", "1"],
        log_dir=directory,
    ).start()
    yield server
    server.stop()


@contextlib.asynccontextmanager
async def remote_agent(server: ServerProcess) -> AsyncIterator[A2AAgent]:
    """The agent as Agent Framework sees it, from outlast's agent card."""
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        card = await A2ACardResolver(http, server.url).get_agent_card()
        async with A2AAgent(agent_card=card, http_client=http) as agent:
            yield agent


async def poll_until_done(agent: A2AAgent, token: A2AContinuationToken) -> Any:
    """``poll_task`` until the response has no continuation token: the task has ended."""
    deadline = time.monotonic() + EVENTUALLY
    polls = 0
    while True:
        response = await agent.poll_task(token)
        polls += 1
        if response.continuation_token is None:
            return response, polls
        assert time.monotonic() < deadline, "the task did not end"
        await asyncio.sleep(0.05)


async def test_a_plain_run_waits_for_the_answer(server: ServerProcess) -> None:
    async with remote_agent(server) as agent:
        response = await agent.run("agent=echo hello from agent framework")
    assert response.text == "agent=echo hello from agent framework"


async def test_a_background_run_returns_a_continuation_token_to_poll(
    server: ServerProcess,
) -> None:
    async with remote_agent(server) as agent:
        started = await agent.run("agent=count n=30 delay=0.02", background=True)
        token = started.continuation_token
        assert token is not None and token["task_id"].startswith("resp_")
        assert started.text == ""
        done, polls = await poll_until_done(agent, token)
    assert done.text == count_text(30)
    assert polls >= 1


async def test_a_stream_resumed_from_the_token_carries_the_rest_of_the_text(
    server: ServerProcess,
) -> None:
    n = 100
    async with remote_agent(server) as agent:
        started = await agent.run(f"agent=count n={n} delay=0.03", background=True)
        token = started.continuation_token
        assert token is not None
        await asyncio.sleep(0.3)  # let it produce some text first (either way is correct)
        resumed = agent.run(continuation_token=token, stream=True)
        updates = [update async for update in resumed]
        final = await resumed.get_final_response()
        done, _ = await poll_until_done(agent, token)
    streamed = "".join(update.text for update in updates)
    # SubscribeToTask: the task so far, then live events; the framework streams the live text.
    assert streamed and count_text(n).endswith(streamed)
    assert final.text == streamed
    assert done.text == count_text(n)


async def test_a_finished_task_cannot_be_resumed_so_the_client_gets_it(
    server: ServerProcess,
) -> None:
    async with remote_agent(server) as agent:
        started = await agent.run("agent=count n=3", background=True)
        token = started.continuation_token
        assert token is not None
        done, _ = await poll_until_done(agent, token)
        with pytest.raises(UnsupportedOperationError, match="terminal state"):
            [update async for update in agent.run(continuation_token=token, stream=True)]
        again = await agent.poll_task(token)  # GetTask: the fallback
    assert again.text == done.text == count_text(3)
    assert again.continuation_token is None


async def test_a_session_keeps_the_conversation_in_one_context(server: ServerProcess) -> None:
    async with remote_agent(server) as agent:
        session = agent.create_session()
        await agent.run("agent=echo my name is Ada", session=session)
        second = await agent.run("agent=context what is my name?", session=session)
    seen = json.loads(second.text)
    texts = [part["text"] for item in seen["input"] for part in item["content"]]
    assert texts == ["agent=echo my name is Ada", "agent=echo my name is Ada",
                     "agent=context what is my name?"]  # fmt: skip
    assert seen["previous_response_id"].startswith("resp_")
