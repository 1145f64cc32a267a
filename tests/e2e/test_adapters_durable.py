"""Hosted agents resume after ``kill -9`` from their last completed model or tool call (issue 13).

Each adapter is hosted by a real ``outlast serve`` on SQLite, talking to the fake model on
loopback, which records every request and whether its answer was sent to the end. The server is
killed with SIGKILL while the model streams and started again on the same database (a LangGraph
graph also on PostgreSQL, taken over by another replica, its checkpoints there): the run must
end ``completed`` with the output an uninterrupted run gives, and no model call that had
completed may have been made again (nor a tool run twice). Only the call that was streaming when
the server died is made again. One server per test: killing it is the point.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from databases import fresh_database
from fake_model import Delay, FakeModel, Text, ToolCall, Turn
from helpers import wait_terminal
from serverproc import ServerProcess
from test_adapters import ADAPTERS, Adapter, normal

FRAMEWORKS = [a for a in ADAPTERS if not a.is_upstream]
UPSTREAMS = [a for a in ADAPTERS if a.is_upstream]
LANGGRAPH = [a for a in ADAPTERS if a.builder.startswith("graph")]
TICKS = [f"tick {i} " for i in range(30)]


@pytest.fixture
def fake() -> Iterator[FakeModel]:
    with FakeModel() as model:
        yield model


def server_for(
    adapter: Adapter, fake: FakeModel, tmp_path: Path, db: Path | str | None = None, *args: str
) -> ServerProcess:
    env = {
        "FAKE_MODEL_URL": fake.base_url,
        "OUTLAST_UPSTREAM_BASE_URL": fake.base_url,
        "OUTLAST_UPSTREAM_API_KEY": "fake-key",
        "OUTLAST_TEST_TOOL_LOG": str(tmp_path / "tools.log"),
        **adapter.env,
    }
    db = db or tmp_path / "outlast.db"
    return ServerProcess(db, agent=adapter.target, env=env, args=args, log_dir=tmp_path)


# The frameworks take a while to import on a loaded machine: starts are given more time.
START = 60.0


def kill_when(server: ServerProcess, response_id: str, text: str) -> None:
    """SIGKILL the server once the response's stream has delivered ``text`` (so the model is
    streaming, and what came before is committed: events are delivered only once stored)."""
    streamed = ""
    for event in server.client().responses.retrieve(response_id, stream=True):
        if event.type == "response.output_text.delta":
            streamed += event.delta
            if text in streamed:
                server.kill()
                return
    raise AssertionError(f"{response_id} ended without streaming {text!r}")


def tool_runs(tmp_path: Path) -> list[str]:
    path = tmp_path / "tools.log"
    return path.read_text().split() if path.exists() else []


@pytest.mark.parametrize("adapter", UPSTREAMS, ids=[a.name for a in UPSTREAMS])
def test_an_upstream_run_killed_while_the_model_streams_completes_after_the_restart(
    adapter: Adapter, fake: FakeModel, tmp_path: Path
) -> None:
    slow: Turn = [Text(TICKS, delay=0.1)]
    fake.script(slow, [Text(TICKS)])  # the interrupted call, then the same call again
    server = server_for(adapter, fake, tmp_path).start(START)
    created = server.client().responses.create(model="fake-model", input="Count.", background=True)
    kill_when(server, created.id, "tick 5 ")
    server.start(START)

    response = wait_terminal(server, created.id)
    assert response["status"] == "completed"
    # What the killed call had streamed stays, closed incomplete; the call made again follows.
    cut, whole = response["output"]
    assert (cut["status"], whole["status"]) == ("incomplete", "completed")
    assert "tick 5 " in _text(cut) and "".join(TICKS).startswith(_text(cut))
    assert _text(whole) == "".join(TICKS)
    assert response["metadata"]["outlast_resumes"] == "1"
    assert [r.completed for r in fake.requests] == [False, True]
    # Only the call that completed is counted.
    assert response["usage"]["total_tokens"] == 30
    server.stop()


@pytest.mark.parametrize("adapter", FRAMEWORKS, ids=[a.name for a in FRAMEWORKS])
def test_a_framework_run_killed_after_its_tool_call_resumes_from_there(
    adapter: Adapter, fake: FakeModel, tmp_path: Path
) -> None:
    server = server_for(adapter, fake, tmp_path).start(START)
    response_id = killed_mid_answer(fake, server, server, tmp_path)
    server.stop()
    if adapter in LANGGRAPH:
        # The checkpoints were beside the store; once the run has ended they are deleted.
        with sqlite3.connect(tmp_path / "outlast.langgraph.db") as checkpoints:
            query = "SELECT COUNT(*) FROM checkpoints WHERE thread_id = ?"
            assert checkpoints.execute(query, (response_id,)).fetchone() == (0,)
            assert checkpoints.execute("SELECT COUNT(*) FROM checkpoints").fetchone() == (0,)


@pytest.mark.parametrize("adapter", LANGGRAPH, ids=[a.name for a in LANGGRAPH])
def test_a_graph_on_postgresql_resumes_on_another_replica_from_its_checkpoint(
    adapter: Adapter, fake: FakeModel, tmp_path: Path
) -> None:
    # The checkpoints live in the PostgreSQL database: the replica that takes the run over
    # (once the dead one's lease has expired) reads them there.
    with fresh_database("postgres", tmp_path) as db:
        first = server_for(adapter, fake, tmp_path, db.url, "--lease", "2").start(START)
        second = server_for(adapter, fake, tmp_path, db.url, "--lease", "2")
        killed_mid_answer(fake, first, second, tmp_path)
        second.stop()


def killed_mid_answer(
    fake: FakeModel, server: ServerProcess, survivor: ServerProcess, tmp_path: Path
) -> str:
    """A tool loop killed while the model streams its answer; ``survivor`` (started after the
    kill, possibly ``server`` itself) finishes the run, whose id this returns."""
    call = ToolCall("get_weather", {"city": "Paris"})
    answer = ["Paris ", "is ", "sunny ", *TICKS]
    fake.script([call], [Text(answer, delay=0.1)], [Text(answer)])
    created = server.client().responses.create(
        model="fake-model", input="Weather in Paris?", background=True
    )
    kill_when(server, created.id, "tick 3 ")
    survivor.start(START)

    response = wait_terminal(survivor, created.id)
    assert response["status"] == "completed", response.get("error")
    *before, cut, whole = response["output"]
    assert [o for o in normal(before) if o[0] != "reasoning"] == [
        ("function_call", "get_weather", {"city": "Paris"}, call.call_id),
        ("function_call_output", call.call_id, "Paris: 21 °C and sunny"),
    ]
    # The answer being streamed at the kill is closed incomplete; the call made again follows.
    assert (cut["status"], whole["status"]) == ("incomplete", "completed")
    assert "tick 3 " in _text(cut) and "".join(answer).startswith(_text(cut))
    assert _text(whole) == "".join(answer)
    assert response["metadata"]["outlast_resumes"] == "1"
    # The first model call and the tool ran once; only the call streaming at the kill again.
    assert fake.completed_twice() == []
    assert [r.completed for r in fake.requests] == [True, False, True]
    assert tool_runs(tmp_path) == ["Paris"]
    return created.id


def _text(message: dict[str, Any]) -> str:
    assert message["type"] == "message"
    return "".join(part.get("text", "") for part in message["content"])


@pytest.mark.parametrize("adapter", FRAMEWORKS, ids=[a.name for a in FRAMEWORKS])
def test_a_deploy_hands_a_framework_run_over_at_its_next_call_on_postgresql(
    adapter: Adapter, fake: FakeModel, tmp_path: Path
) -> None:
    # SIGTERM while the first model call streams (it waits 10 s before its tool call): the call
    # finishes on the stopping replica, and at the next step (the tool call) the run moves to
    # the other, which goes on from the journal.
    call = ToolCall("get_weather", {"city": "Paris"})
    fake.script([Delay(10.0), call], [Text(["Paris ", "is ", "sunny."])])
    with fresh_database("postgres", tmp_path) as db:
        replicas = [
            server_for(adapter, fake, tmp_path, db.url, "--lease", "2").start(START)
            for _ in range(2)
        ]
        created = (
            replicas[0]
            .client()
            .responses.create(model="fake-model", input="Weather in Paris?", background=True)
        )
        assert fake.wait_for_streaming(30), "the model was never called"
        executing, other = sorted(replicas, key=lambda r: not running(r))
        executing.stop()  # SIGTERM: a deploy
        response = wait_terminal(other, created.id)
        other.stop()

    assert response["status"] == "completed", response.get("error")
    assert [o for o in normal(response["output"]) if o[0] != "reasoning"] == [
        ("function_call", "get_weather", {"city": "Paris"}, call.call_id),
        ("function_call_output", call.call_id, "Paris: 21 °C and sunny"),
        ("message", "Paris is sunny."),
    ]
    assert response["metadata"]["outlast_resumes"] == "1"  # handed over once
    assert [r.completed for r in fake.requests] == [True, True]  # no call made twice
    assert tool_runs(tmp_path) == ["Paris"]


def running(server: ServerProcess) -> bool:
    """Whether the replica executes a run now (the test's only one)."""
    count: int = httpx.get(f"{server.url}/healthz", timeout=10.0).json()["running"]
    return count > 0
