"""Crash recovery: after SIGKILL and a restart nothing committed is lost and nothing hangs.

The rule (design-notes invariants 1, 2 and 4): every finished response and every committed event
survives; every run that was running when the process died ends ``failed`` soon after the restart,
with an error message saying why, and its event log ends with a ``response.failed`` event, so that a
replay from 0 terminates; sequence numbers stay gapless across the crash.

The backends differ in when and why. On SQLite one process runs everything: at start-up it fails
what the dead process left ("the server stopped"), queued runs included. On PostgreSQL the runs may
be executing on another replica, so a restarted replica fails them only once the dead worker's lease
has expired ("the worker executing this run stopped"), and a run still waiting in the shared queue
is not lost but executed by the restarted replica. The servers get ``--lease 2`` to keep it short. And no client ever received an event the store does not have ("durable before
delivered"): what a reader got before the kill is, event for event, a prefix of the log replayed
after the restart.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import httpx

from databases import TestDatabase
from helpers import (
    EVENTUALLY,
    STREAM_TIMEOUT,
    TERMINAL_TYPES,
    Event,
    get_json,
    iter_sse,
    wait_for_marker,
    wait_until,
)
from serverproc import ServerProcess

# Every server here gets ``--drain-timeout 1``: a failing test's teardown (SIGTERM) must not wait
# for long runs.


def crash_args(database: TestDatabase, *args: str) -> list[str]:
    """Server flags: a quick drain, and on PostgreSQL a short lease (so takeovers come soon)."""
    lease = ["--lease", "2"] if database.backend == "postgres" else []
    return [*args, "--drain-timeout", "1", *lease]


def crash_message(database: TestDatabase) -> str:
    """What the error of a run that a crash interrupted says, per backend."""
    if database.backend == "postgres":
        return "the worker executing this run stopped"
    return "server stopped"


# -- helpers -------------------------------------------------------------------------------------


def read_stream(
    server: ServerProcess, response_id: str, limit: int | None = None, after: int | None = None
) -> list[Event]:
    """A response's events from sequence 0 (or after ``after``): all of them, or ``limit``."""
    events: list[Event] = []
    params = {"stream": "true"}
    if after is not None:
        params["starting_after"] = str(after)
    with (
        httpx.Client(base_url=server.url, timeout=STREAM_TIMEOUT) as http,
        http.stream("GET", f"/v1/responses/{response_id}", params=params) as r,
    ):
        assert r.status_code == 200, r.read()
        for event in iter_sse(r.iter_lines()):
            events.append(event)
            if len(events) == limit:
                break
    return events


def output_text(response: Event) -> str:
    return "".join(
        part["text"]
        for item in response["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )


def produced_text(server: ServerProcess, response_id: str, chars: int) -> Callable[[], bool]:
    return lambda: len(output_text(get_json(server, response_id))) >= chars


def deltas(events: list[Event]) -> str:
    return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")


def count_text(n: int) -> str:
    return "".join(f"{i} " for i in range(n))


def assert_failed_by_the_crash(
    server: ServerProcess, database: TestDatabase, response_id: str
) -> list[Event]:
    """The response ended failed (the crash's message) and its log, replayed from 0, says so."""
    wait_until(
        lambda: get_json(server, response_id)["status"] not in ("queued", "in_progress"),
        f"{response_id} is recovered",
        timeout=30.0,
    )
    response = get_json(server, response_id)
    assert response["status"] == "failed", response
    assert crash_message(database) in response["error"]["message"].lower(), response["error"]

    log = read_stream(server, response_id)  # returns: the replay terminates
    assert [e["sequence_number"] for e in log] == list(range(len(log))), "gap across the crash"
    assert [e["type"] for e in log if e["type"] in TERMINAL_TYPES] == ["response.failed"]
    assert log[-1]["type"] == "response.failed"
    assert log[-1]["response"]["status"] == "failed"
    assert log[-1]["response"]["error"] == response["error"]
    # The response object and its log agree on what was produced before the crash.
    assert output_text(response) == deltas(log)
    return log


# -- tests ---------------------------------------------------------------------------------------


def test_after_sigkill_unfinished_runs_fail_and_finished_responses_are_intact(
    make_server: Callable[..., ServerProcess], database: TestDatabase, tmp_path: Path
) -> None:
    server = make_server(
        agent="scripted_agents:router", args=crash_args(database, "--max-running", "3")
    ).start()
    queued_marker = tmp_path / "queued-marker"
    with server.client() as client:
        finished_id = client.responses.create(model="count", input="n=5", background=True).id
        wait_until(lambda: get_json(server, finished_id)["status"] == "completed", "completed")
        finished = get_json(server, finished_id)
        finished_log = read_stream(server, finished_id)

        running_ids = [
            client.responses.create(model="count", input="n=1000 delay=0.01", background=True).id
            for _ in range(3)
        ]
        queued = client.responses.create(
            model="block", input=f"marker={queued_marker}", background=True
        )
        assert queued.status == "queued"
        for response_id in running_ids:
            wait_until(produced_text(server, response_id, 20), f"{response_id} produced text")
        # Events delivered before the crash (so committed): the start of each running log.
        prefixes = {rid: read_stream(server, rid, limit=15) for rid in running_ids}
        assert get_json(server, queued.id)["status"] == "queued"

    server.kill()
    server.start()

    with server.client() as client:
        assert get_json(server, finished_id) == finished
        assert read_stream(server, finished_id) == finished_log
        assert client.responses.retrieve(finished_id).output_text == "0 1 2 3 4 "

        for response_id in running_ids:
            log = assert_failed_by_the_crash(server, database, response_id)
            assert log[: len(prefixes[response_id])] == prefixes[response_id]
            produced = deltas(log)
            assert count_text(1000).startswith(produced) and len(produced) >= 20
            # Strict SDK validation of the recovered object and of its whole replayed stream.
            assert client.responses.retrieve(response_id).status == "failed"
            replayed = list(client.responses.retrieve(response_id, stream=True))
            assert replayed[-1].type == "response.failed"

        if database.backend == "postgres":
            # The shared queue survived the crash: the restarted replica runs the queued run.
            wait_for_marker(queued_marker, "started")
            assert client.responses.cancel(queued.id).status == "cancelled"
            wait_for_marker(queued_marker, "cancelled")
        else:
            queued_log = assert_failed_by_the_crash(server, database, queued.id)
            assert "response.in_progress" not in [e["type"] for e in queued_log]

        # The restarted server works.
        later = client.responses.create(model="count", input="n=3", background=True)
        wait_until(lambda: get_json(server, later.id)["status"] == "completed", "a new run")
        assert later.id not in {finished_id, queued.id, *running_ids}
    if database.backend == "sqlite":
        assert not queued_marker.exists(), "the recovered queued run was started late"


def test_events_a_client_received_before_a_kill_are_in_the_store_after_restart(
    make_server: Callable[..., ServerProcess], database: TestDatabase
) -> None:
    """Durable before delivered: what readers got is a prefix of the log after the restart."""
    server = make_server(agent="scripted_agents:router", args=crash_args(database)).start()
    body = {"model": "count", "input": "n=1000000", "background": True, "stream": True}
    received: list[list[Event]] = [[], [], [], []]
    problems: list[str] = []

    def read(into: list[Event], response_id: str | None = None) -> None:
        """A raw reader that keeps everything it gets until the server dies under it."""
        try:
            with httpx.Client(base_url=server.url, timeout=STREAM_TIMEOUT) as http:
                if response_id is None:
                    request = http.build_request("POST", "/v1/responses", json=body)
                else:
                    params = {"stream": "true"}
                    request = http.build_request(
                        "GET", f"/v1/responses/{response_id}", params=params
                    )
                r = http.send(request, stream=True)
                try:
                    if r.status_code != 200:
                        problems.append(f"{r.status_code}: {r.read()!r}")
                        return
                    for event in iter_sse(r.iter_lines()):
                        into.append(event)
                finally:
                    r.close()
        except httpx.HTTPError:
            pass  # the kill
        if into and into[-1]["type"] in TERMINAL_TYPES:
            problems.append(f"a stream of a million events ended before the kill: {into[-1]}")

    creators = [threading.Thread(target=read, args=(received[i],)) for i in range(3)]
    for thread in creators:
        thread.start()
    wait_until(lambda: bool(received[0]), "the first stream started")
    follower = threading.Thread(target=read, args=(received[3], received[0][0]["response"]["id"]))
    follower.start()
    wait_until(
        lambda: bool(problems) or all(len(events) >= 300 for events in received),
        "every reader got 300 events",
    )
    assert not problems

    server.kill()
    for thread in [*creators, follower]:
        thread.join(timeout=EVENTUALLY)
        assert not thread.is_alive(), "a reader hung after the kill"
    server.start()

    response_ids = [events[0]["response"]["id"] for events in received[:3]]
    logs = {rid: assert_failed_by_the_crash(server, database, rid) for rid in response_ids}
    for events in received:
        response_id = events[0]["response"]["id"]
        log = logs[response_id]
        assert len(log) > len(events), "the log lost events that a client had received"
        assert log[: len(events)] == events
    # A reader cut off by the crash resumes where it was and gets the rest, up to the failure.
    follower_events = received[3]
    rest = read_stream(
        server, follower_events[0]["response"]["id"], after=follower_events[-1]["sequence_number"]
    )
    assert follower_events + rest == logs[follower_events[0]["response"]["id"]]


def test_a_crash_during_recovery_leaves_exactly_one_terminal_event(
    make_server: Callable[..., ServerProcess], database: TestDatabase
) -> None:
    server = make_server(agent="scripted_agents:router", args=crash_args(database)).start()
    with server.client() as client:
        response_id = client.responses.create(
            model="count", input="n=1000 delay=0.01", background=True
        ).id
    wait_until(produced_text(server, response_id, 10), "the run produced text")

    server.kill()
    server.start()
    first = assert_failed_by_the_crash(server, database, response_id)
    server.kill()
    server.start()

    assert assert_failed_by_the_crash(server, database, response_id) == first
