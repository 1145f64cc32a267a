"""Durable runs on two PostgreSQL replicas, killed on purpose (issue 13).

A 40-step journaled agent (tests/support/durable_agents.py) runs on one replica; the test kills
that replica with SIGKILL three times, each time while the run goes on. The survivor takes the
run over once the lease expires and resumes it from its last completed step; the killed replica
is started again (a new worker) once the run has moved on, so that the next kill has a survivor
too. A client, as behind a load balancer, streams from the replica executing the run and, when
it dies, reconnects to the other with ``starting_after``. The run must end ``completed`` with the
uninterrupted run's output, each completed step must have run once (one running at a kill at most
twice), and the client must have received every event exactly once, with no gap. A deploy
(SIGTERM) hands a journaled run over at its next step boundary, without waiting for the drain,
and a durably sleeping one at once, to the other replica, which resumes the first and wakes the
second when due. A question (``request.ask``) asked on a replica that then died is answered
through the other.

Replicas get ``--lease 2``; nothing asserts how fast a takeover happened.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from databases import TestDatabase, fresh_database
from durable_agents import expected_text
from serverproc import ServerProcess

pytestmark = pytest.mark.timeout(300)

STEPS = 40
KILL_AFTER_STEPS = (5, 16, 27)


@pytest.fixture
def postgres_database(tmp_path: Path) -> Iterator[TestDatabase]:
    with fresh_database("postgres", tmp_path) as db:
        yield db


def executes(server: ServerProcess) -> bool:
    """The replica executes a run now (the test's only one)."""
    running: int = httpx.get(f"{server.url}/healthz", timeout=10.0).json()["running"]
    return running > 0


def executions(log: Path) -> collections.Counter[int]:
    """How often each step ran, from the side file its executions append to."""
    lines = log.read_text().split() if log.exists() else []
    return collections.Counter(int(position) for position in lines[1::2])


def test_a_journaled_run_survives_three_kills_of_the_replica_executing_it(
    postgres_database: TestDatabase, tmp_path: Path
) -> None:
    log = tmp_path / "steps.log"
    a, b = (
        ServerProcess(
            postgres_database.url,
            agent="durable_agents:journaled",
            args=["--lease", "2", "--max-resumes", "5"],
            env={"OUTLAST_TEST_STEP_LOG": str(log)},
            log_dir=tmp_path,
        ).start(timeout=60.0)
        for _ in range(2)
    )
    created = a.client().responses.create(
        model="durable", input=f"steps={STEPS} delay=0.15", background=True
    )
    killed: ServerProcess | None = None  # to be started again once the survivor runs the run
    kills = list(KILL_AFTER_STEPS)
    received: list[Any] = []
    text = ""
    source = a
    try:
        while not (received and received[-1].type == "response.completed"):
            after = {"starting_after": received[-1].sequence_number} if received else {}
            client = source.client(timeout=httpx.Timeout(120.0, connect=10.0))
            try:
                for event in client.responses.retrieve(created.id, stream=True, **after):
                    received.append(event)
                    if event.type != "response.output_text.delta":
                        continue
                    text += event.delta
                    if killed is not None:
                        if executes(source):  # took the run over: it has a survivor again
                            killed.start(timeout=60.0)
                            killed = None
                    elif kills and text.count("\n") > kills[0] and executes(source):
                        kills.pop(0)
                        source.kill()
                        killed = source
                        source = b if source is a else a
                        break
            except (openai.APIConnectionError, openai.APIError, httpx.HTTPError):
                pass  # the stream broke with the replica
    finally:
        for server in (a, b):
            if server.proc is not None and server.proc.poll() is None:
                server.stop()
    assert not kills
    assert [event.sequence_number for event in received] == list(range(len(received)))
    assert [event.type for event in received].count("response.completed") == 1
    final = received[-1].response
    assert final.output_text == text == expected_text(STEPS)
    assert final.metadata["outlast_resumes"] == str(len(KILL_AFTER_STEPS))
    ran = executions(log)
    assert sorted(ran) == list(range(STEPS))
    assert max(ran.values()) <= 2
    assert sum(1 for count in ran.values() if count == 2) <= len(KILL_AFTER_STEPS)


def test_a_deploy_hands_a_journaled_run_and_a_sleeping_one_to_the_other_replica(
    postgres_database: TestDatabase, tmp_path: Path
) -> None:
    log = tmp_path / "steps.log"

    def replica(agent: str) -> ServerProcess:
        return ServerProcess(
            postgres_database.url,
            agent=f"durable_agents:{agent}",
            args=["--lease", "2", "--drain-timeout", "60"],
            env={"OUTLAST_TEST_STEP_LOG": str(log)},
            log_dir=tmp_path,
        ).start(timeout=60.0)

    # One agent for both runs: the router picks by the prompt.
    leaving, staying = replica("router"), replica("router")
    try:
        client = leaving.client()
        working = client.responses.create(
            model="durable", input="journaled steps=30 delay=0.1", background=True
        )
        sleeping = client.responses.create(
            model="durable", input="sleeper sleep=4", background=True
        )
        deadline = time.monotonic() + 30
        while not (
            "step 3:" in client.responses.retrieve(working.id).output_text
            and client.responses.retrieve(sleeping.id).output_text == "before\n"
        ):
            assert time.monotonic() < deadline, "the runs did not get going"
            time.sleep(0.05)
        time.sleep(0.5)  # the sleep's journal entry commits
        # SIGTERM: the working run is handed over at its next step, not after the 60 s drain;
        # the sleeping one at once.
        assert leaving.stop(timeout=30.0) == 0
        other = staying.client()
        for response_id in (working.id, sleeping.id):
            deadline = time.monotonic() + 60
            while (response := other.responses.retrieve(response_id)).status not in (
                "completed", "failed", "cancelled", "incomplete",
            ):  # fmt: skip
                assert time.monotonic() < deadline, f"{response_id} did not end"
                time.sleep(0.1)
            assert response.status == "completed", response.error
        assert other.responses.retrieve(working.id).output_text == expected_text(30)
        assert other.responses.retrieve(working.id).metadata["outlast_resumes"] == "1"
        assert other.responses.retrieve(sleeping.id).output_text == "before\nafter\n"
        assert "outlast_resumes" not in (other.responses.retrieve(sleeping.id).metadata or {})
    finally:
        for server in (leaving, staying):
            if server.proc is not None and server.proc.poll() is None:
                server.stop()


def test_a_question_asked_on_one_replica_is_answered_through_the_other_after_it_died(
    postgres_database: TestDatabase, tmp_path: Path
) -> None:
    log = tmp_path / "steps.log"
    a, b = (
        ServerProcess(
            postgres_database.url,
            agent="durable_agents:approver",
            args=["--lease", "2"],
            env={"OUTLAST_TEST_STEP_LOG": str(log)},
            log_dir=tmp_path,
        ).start(timeout=60.0)
        for _ in range(2)
    )
    try:
        asked = a.client().responses.create(model="durable", input="go", background=True)
        deadline = time.monotonic() + 30
        while (asked := a.client().responses.retrieve(asked.id)).status != "completed":
            assert time.monotonic() < deadline, "the question was not asked"
            time.sleep(0.05)
        a.kill()
        call = asked.output[-1]
        answer = {"type": "function_call_output", "call_id": call.call_id, "output": "yes"}
        other = b.client()
        continued = other.responses.create(
            model="durable", input=[answer], previous_response_id=asked.id, background=True
        )
        while (continued := other.responses.retrieve(continued.id)).status != "completed":
            assert time.monotonic() < deadline + 30, "the answered run did not end"
            time.sleep(0.05)
        assert continued.output_text == "approved: yes\n"
        assert executions(log) == {0: 1, 1: 1}
    finally:
        for server in (a, b):
            if server.proc is not None and server.proc.poll() is None:
                server.stop()
