"""Durable runs on two PostgreSQL replicas, killed on purpose (issue 13).

A 40-step journaled agent (tests/support/durable_agents.py) runs on two replicas; the test kills
the replica executing it with SIGKILL 20 times, each at a random point once a step has begun
since the last takeover, and starts it again at once (a new worker), so that the next kill has a
survivor too. Whichever replica claims the run once the lease expires resumes it from its last
completed step. A client, as behind a load balancer, streams from either replica and, when the
stream breaks, reconnects to the other with ``starting_after``. The run must end ``completed``
with the uninterrupted run's output, each completed step must have run once (a step runs again
only once per kill that interrupted it), and the client must have received every event exactly
once, with no gap. A deploy
(SIGTERM) hands a journaled run over at its next step boundary, without waiting for the drain,
and a durably sleeping one at once, to the other replica, which resumes the first and wakes the
second when due. A question (``request.ask``) asked on a replica that then died is answered
through the other.

Replicas get ``--lease 2``; nothing asserts how fast a takeover happened.
"""

from __future__ import annotations

import collections
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from databases import TestDatabase, fresh_database
from durable_agents import executions, expected_text, last_started
from helpers import wait_until
from serverproc import ServerProcess

pytestmark = pytest.mark.timeout(300)

STEPS = 40
KILLS = 20
STEP_SECONDS = 0.5  # long beside a takeover's polling: 20 kills fit in 40 steps


@pytest.fixture
def postgres_database(tmp_path: Path) -> Iterator[TestDatabase]:
    with fresh_database("postgres", tmp_path) as db:
        yield db


def executes(server: ServerProcess) -> bool:
    """The replica executes a run now (the test's only one); False while it is not up."""
    try:
        running: int = httpx.get(f"{server.url}/healthz", timeout=10.0).json()["running"]
    except httpx.HTTPError:
        return False
    return running > 0


def status(a: ServerProcess, b: ServerProcess, response_id: str) -> str:
    """What the replicas say about the run (for a failure's message)."""
    said = []
    for server in (a, b):
        try:
            health = httpx.get(f"{server.url}/healthz", timeout=5).json()
            response = httpx.get(
                f"{server.base_url}/responses/{response_id}",
                headers={"Authorization": "Bearer test-key"},
                timeout=5,
            ).json()
            said.append(f"{server.port}: {health} {response.get('status')} {response.get('error')}")
        except httpx.HTTPError as exc:
            said.append(f"{server.port}: {exc!r}")
    return "; ".join(said)


def wait_for_executor(
    a: ServerProcess, b: ServerProcess, seen: str, response_id: str
) -> ServerProcess:
    """The replica that executes the run, once one does (after a kill: once it took it over)."""
    deadline = time.monotonic() + 60
    while True:
        for server in (a, b):
            if server.proc is not None and server.proc.poll() is None and executes(server):
                return server
        assert time.monotonic() < deadline, (
            f"no replica took the run over {seen}: {status(a, b, response_id)}"
        )
        time.sleep(0.05)


def follow(servers: tuple[ServerProcess, ServerProcess], response_id: str) -> list[Any]:
    """Every event of the run, as a client behind a load balancer reads it: from whichever
    replica answers, again from the other with ``starting_after`` whenever the stream breaks."""
    received: list[Any] = []
    turn = 0
    deadline = time.monotonic() + 240
    while not (received and received[-1].type == "response.completed"):
        assert time.monotonic() < deadline, "the run did not end"
        source = servers[turn % 2]
        turn += 1
        after = {"starting_after": received[-1].sequence_number} if received else {}
        try:
            client = source.client(timeout=httpx.Timeout(120.0, connect=2.0))
            received.extend(client.responses.retrieve(response_id, stream=True, **after))
        except (openai.APIConnectionError, openai.APIError, httpx.HTTPError):
            time.sleep(0.1)  # the stream broke with the replica, or it is not up yet
    return received


def test_a_journaled_run_survives_20_random_kills_of_the_replica_executing_it(
    postgres_database: TestDatabase, tmp_path: Path
) -> None:
    seed = int(os.environ.get("OUTLAST_TEST_SEED", time.time_ns() % 1_000_000))
    chosen = random.Random(seed)
    seen = f"(seed {seed}: OUTLAST_TEST_SEED={seed} repeats these kill offsets)"
    interrupted: collections.Counter[int] = collections.Counter()  # started last before a kill
    log = tmp_path / "steps.log"
    a, b = (
        ServerProcess(
            postgres_database.url,
            agent="durable_agents:journaled",
            args=["--lease", "2", "--max-resumes", str(KILLS + 5)],
            env={"OUTLAST_TEST_STEP_LOG": str(log)},
            log_dir=tmp_path,
        ).start(timeout=60.0)
        for _ in range(2)
    )
    created = a.client().responses.create(
        model="durable", input=f"steps={STEPS} delay={STEP_SECONDS}", background=True
    )
    received: list[Any] = []
    follower = threading.Thread(target=lambda: received.extend(follow((a, b), created.id)))
    follower.start()
    try:
        # Killed where the run really is (its step log), not where a reader has got to: once a
        # step has begun since the run was last taken over, a random part of a step later.
        restarts: list[threading.Thread] = []
        for kill in range(KILLS):
            executing = wait_for_executor(a, b, f"after kill {kill} {seen}", created.id)
            resumed_at = last_started(log)
            wait_until(
                lambda at=resumed_at: last_started(log) > at,
                f"a step began after kill {kill}, step {resumed_at} ({seen}): {status(a, b, created.id)}",
            )
            time.sleep(chosen.uniform(0.0, STEP_SECONDS))  # within the step, or between two
            executing.kill()
            interrupted[last_started(log)] += 1
            # Started again at once, while the lease runs out: whichever replica is up then takes
            # the run over (under load the survivor may be killed before this one is up).
            restarts.append(threading.Thread(target=executing.start, kwargs={"timeout": 60.0}))
            restarts[-1].start()
        for restart in restarts:
            restart.join()
        follower.join(timeout=240)
        assert not follower.is_alive(), f"the follower did not see the run end {seen}"
    finally:
        for server in (a, b):
            if server.proc is not None and server.proc.poll() is None:
                server.stop()
    assert [event.sequence_number for event in received] == list(range(len(received))), seen
    assert [event.type for event in received].count("response.completed") == 1, seen
    final = received[-1].response
    text = "".join(e.delta for e in received if e.type == "response.output_text.delta")
    assert final.output_text == text == expected_text(STEPS), seen
    assert final.metadata["outlast_resumes"] == str(KILLS), seen
    # Each completed step ran once; a step ran again only once for each kill that interrupted it.
    ran = executions(log)
    assert sorted(ran) == list(range(STEPS)), seen
    assert all(count <= 1 + interrupted[step] for step, count in ran.items()), (seen, ran)


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
