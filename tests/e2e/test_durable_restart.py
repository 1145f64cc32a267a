"""Durable runs through a real server on SQLite, killed on purpose (issue 13).

A 40-step journaled agent (tests/support/durable_agents.py) records every execution of a step
in a side file. The server is killed with SIGKILL 20 times at random points while the run goes
on (after a random step, a random part of a step later) and started again on the same database
each time; a client following the run with the ``openai`` SDK
reconnects with ``starting_after`` after every kill. The run must end ``completed`` with the
uninterrupted run's output, each completed step must have run once (a step runs again only
once per kill that interrupted it), and the client must have received every event exactly once, in
order, with no gap, and so must ``OutlastClient`` following it all the while. Then a replay
that takes another path after a restart fails naming both steps, a durable sleep survives a
kill, and a question (``request.ask``) is answered by a continuing response after a restart,
once.

One server process per scenario: killing it is the point.
"""

from __future__ import annotations

import collections
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

import openai
import pytest

from durable_agents import executions, expected_text, last_started
from helpers import wait_terminal
from outlast.client import Backoff, OutlastClient
from serverproc import ServerProcess

STEPS = 40
KILLS = 20
STEP_SECONDS = 0.15


def kill_points(seed: int) -> list[tuple[int, float]]:
    """Where to kill: after the text of which step, and how much later (within a step)."""
    chosen = random.Random(seed)
    steps = sorted(chosen.sample(range(1, STEPS - 1), KILLS))
    return [(step, chosen.uniform(0.0, STEP_SECONDS)) for step in steps]


def server_for(tmp_path: Path, agent: str, *args: str, **env: str) -> ServerProcess:
    return ServerProcess(
        tmp_path / "durable.db",
        agent=f"durable_agents:{agent}",
        args=list(args),
        env={"OUTLAST_TEST_STEP_LOG": str(tmp_path / "steps.log"), **env},
    )


def test_a_journaled_run_killed_20_times_at_random_ends_as_if_never_interrupted(
    tmp_path: Path,
) -> None:
    seed = int(os.environ.get("OUTLAST_TEST_SEED", time.time_ns() % 1_000_000))
    kills = kill_points(seed)
    seen = f"(seed {seed}: OUTLAST_TEST_SEED={seed} repeats these kill points: {kills})"
    server = server_for(tmp_path, "journaled", "--max-resumes", str(KILLS + 5)).start()
    client = server.client()
    created = client.responses.create(
        model="durable", input=f"steps={STEPS} delay={STEP_SECONDS}", background=True
    )
    # A second follower: outlast's own client, reconnecting by itself through every kill.
    followed: list[Any] = []
    outlast_client = OutlastClient(
        base_url=server.base_url, api_key="test-key",
        reconnect=Backoff(initial=0.1, maximum=0.5), give_up_after=60.0,
    )  # fmt: skip
    follower = threading.Thread(target=lambda: followed.extend(outlast_client.resume(created.id)))
    follower.start()
    received: list[Any] = []
    interrupted: collections.Counter[int] = collections.Counter()  # started last before a kill
    text = ""
    while True:
        # After a kill, from the event after the last one received (never twice, none missed).
        after = {"starting_after": received[-1].sequence_number} if received else {}
        killed = False
        try:
            stream = client.responses.retrieve(created.id, stream=True, **after)
            for event in stream:
                received.append(event)
                if event.type == "response.output_text.delta":
                    text += event.delta
                if kills and f"step {kills[0][0]}:" in text:
                    time.sleep(kills.pop(0)[1])
                    server.kill()  # mid-run: within a step, or between two
                    interrupted[last_started(tmp_path / "steps.log")] += 1
                    killed = True
                    break
        except (openai.APIConnectionError, openai.APIError):
            killed = True  # the stream broke with the server
        if received and received[-1].type == "response.completed":
            break
        assert killed, "the stream ended without the run's end"
        server.start()
    assert not kills, seen
    follower.join(timeout=60)
    outlast_client.close()
    assert [event.sequence_number for event in received] == list(range(len(received))), seen
    assert [(e.sequence_number, e.type) for e in followed] == [
        (e.sequence_number, e.type) for e in received
    ], seen
    assert [e.type for e in received].count("response.completed") == 1, seen
    final = received[-1].response
    assert final.output_text == text == expected_text(STEPS), seen
    assert final.metadata["outlast_resumes"] == str(KILLS), seen
    # Each completed step ran once; a step ran again only once for each kill that interrupted it
    # (kills right after restarts, while the client catches up, can interrupt one step twice).
    ran = executions(tmp_path / "steps.log")
    assert sorted(ran) == list(range(STEPS)), seen
    assert all(count <= 1 + interrupted[step] for step, count in ran.items()), (seen, ran)
    # What a poll says is what the stream said.
    assert wait_terminal(server, created.id)["output"][0]["content"][0]["text"] == text
    server.stop()


def test_a_replay_that_takes_another_path_after_a_restart_fails_naming_both_steps(
    tmp_path: Path,
) -> None:
    server = server_for(tmp_path, "variant", OUTLAST_TEST_VARIANT="a").start()
    created = server.client().responses.create(model="durable", input="go", background=True)
    deadline = time.monotonic() + 20
    while executions(tmp_path / "steps.log").total() < 2:
        assert time.monotonic() < deadline, "the two steps did not run"
        time.sleep(0.05)
    time.sleep(0.3)  # the second step's journal commits with the output after it
    server.kill()
    restarted = server_for(tmp_path, "variant", OUTLAST_TEST_VARIANT="b")
    restarted.port = server.port
    restarted.start()
    response = wait_terminal(restarted, created.id, timeout=20)
    assert response["status"] == "failed"
    message = response["error"]["message"]
    assert "'second:b'" in message and "'second:a'" in message
    assert executions(tmp_path / "steps.log") == {0: 1, 1: 1}  # replay ran neither step again
    restarted.stop()


def test_a_run_sleeping_durably_when_its_server_is_killed_wakes_after_the_restart(
    tmp_path: Path,
) -> None:
    server = server_for(tmp_path, "sleeper").start()
    client = server.client()
    created = client.responses.create(model="durable", input="sleep=3", background=True)
    deadline = time.monotonic() + 20
    while client.responses.retrieve(created.id).output_text != "before\n":
        assert time.monotonic() < deadline, "the step before the sleep did not run"
        time.sleep(0.05)
    time.sleep(0.5)  # the sleep's journal entry commits
    assert client.responses.retrieve(created.id).status == "in_progress"
    server.kill()
    server.start()
    response = wait_terminal(server, created.id, timeout=30)
    assert response["status"] == "completed"
    assert response["output"][0]["content"][0]["text"] == "before\nafter\n"
    assert "outlast_resumes" not in response["metadata"]
    assert executions(tmp_path / "steps.log") == {0: 1, 1: 1}
    server.stop()


def test_a_question_answered_after_a_restart_continues_the_run_once(tmp_path: Path) -> None:
    server = server_for(tmp_path, "approver").start()
    client = server.client()
    asked = client.responses.create(model="durable", input="go", background=True)
    asked = wait_for_end(client, asked.id)
    call = asked.output[-1]
    assert (asked.status, call.type, call.name) == ("completed", "function_call", "approve")
    server.kill()  # nothing is held while the question waits: a restart loses nothing
    server.start()
    answer = {"type": "function_call_output", "call_id": call.call_id, "output": "yes"}
    continued = client.responses.create(
        model="durable", input=[answer], previous_response_id=asked.id, background=True
    )
    continued = wait_for_end(client, continued.id)
    assert (continued.status, continued.output_text) == ("completed", "approved: yes\n")
    with pytest.raises(openai.BadRequestError, match="already answered"):
        client.responses.create(
            model="durable", input=[answer], previous_response_id=asked.id, background=True
        )
    assert executions(tmp_path / "steps.log") == {0: 1, 1: 1}  # the plan was not made again
    server.stop()


def wait_for_end(client: openai.OpenAI, response_id: str) -> Any:
    deadline = time.monotonic() + 20
    while (response := client.responses.retrieve(response_id)).status in ("queued", "in_progress"):
        assert time.monotonic() < deadline, f"{response_id} did not end"
        time.sleep(0.05)
    return response


def test_a_run_killed_during_its_very_first_step_is_resumed_not_failed(tmp_path: Path) -> None:
    # No step has completed yet, but the run has begun to journal: it is a durable run.
    server = server_for(tmp_path, "journaled").start()
    created = server.client().responses.create(
        model="durable", input="steps=3 delay=1.0", background=True
    )
    deadline = time.monotonic() + 20
    while executions(tmp_path / "steps.log").total() < 1:
        assert time.monotonic() < deadline, "the first step did not start"
        time.sleep(0.02)
    server.kill()  # within step 0's second of work
    server.start()
    response = wait_terminal(server, created.id, timeout=30)
    assert response["status"] == "completed", response
    assert response["output"][0]["content"][0]["text"] == expected_text(3)
    assert response["metadata"]["outlast_resumes"] == "1"
    assert executions(tmp_path / "steps.log") == {0: 2, 1: 1, 2: 1}  # the interrupted step, again
    server.stop()
