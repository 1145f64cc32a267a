"""Many replicas on one PostgreSQL database: the work is shared, nothing is lost, nothing is stuck.

Every test starts real ``outlast serve`` processes (each on its own port) on one fresh PostgreSQL
database and talks to them with the ``openai`` SDK or raw HTTP, as a client behind a load balancer
would. The agents (tests/support/replica_agents.py) note ``started <pid>``, ``cancelled <pid>`` and
``finished <pid>`` in a marker file, which is how a test knows which replica ran what and what the
agent itself observed.

What the tests hold the replicas to (issue 3):

- a response created on one replica is polled, streamed, resumed, chained, cancelled and deleted
  through any other; a tail on one replica of a run executing on another sees every event, in
  order, exactly once, while the run goes on;
- ``--role api`` replicas never execute runs, ``--role worker`` replicas execute them, and queued
  runs (and foreground requests) go to whichever replica has room;
- when a replica dies (SIGKILL) or stalls past its lease (SIGSTOP), every run it held ends
  ``failed`` ("the worker executing this run stopped"), or, for an agent declared retry-safe, runs
  again elsewhere and says which attempt produced it; open streams on the other replicas end with
  that outcome; no committed event is lost, sequence numbers stay gapless, and a stale replica
  cannot append to a run another has taken over;
- a replica shutting down gracefully leaves the others serving and hands over what it can;
- a database restart, or the database dropping every connection, under running replicas leaves
  every run going on or terminal, never stuck, and live tails resume by themselves;
- ``outlast db upgrade`` creates the schema once; replicas started together migrate it once;
- retention (on one replica at a time) deletes expired responses, not running ones.

Replicas get ``--lease 2`` so that takeovers happen within seconds; the waits for them are
generous (``TAKEOVER_WAIT``) and nothing asserts how fast anything happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import openai
import pytest

from databases import TestDatabase, fresh_database, postgres_admin_url
from helpers import (
    EVENTUALLY,
    TERMINAL_STATUSES,
    TERMINAL_TYPES,
    Event,
    get_json,
    iter_sse,
    replay,
    status_of,
    wait_terminal,
    wait_until,
)
from outlast.a2a.service import A2A_POOL_SIZE
from replica_agents import ticks_text
from serverproc import ServerProcess

LEASE = "2"
# Long enough for a lease to expire, another replica to notice and the outcome to be committed,
# on a loaded 2-core machine running the suite on several xdist workers. Only a failing test
# waits this long; a test that makes several such waits gets the longer per-test timeout below.
TAKEOVER_WAIT = 60.0
pytestmark = pytest.mark.timeout(300)
WORKER_STOPPED = "the worker executing this run stopped"
STREAM_READ_TIMEOUT = httpx.Timeout(90.0, connect=10.0)

Replicas = Callable[..., ServerProcess]


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def postgres_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestDatabase]:
    """A fresh PostgreSQL database (skipped without PostgreSQL, failed under CI=true).

    Already migrated (a copy of the session's template), except for a test marked
    ``unmigrated``: the tests of migrating start from a database without the schema.
    """
    migrated = request.node.get_closest_marker("unmigrated") is None
    with fresh_database("postgres", tmp_path, migrated=migrated) as db:
        yield db


@pytest.fixture
def replica(postgres_database: TestDatabase, tmp_path: Path) -> Iterator[Replicas]:
    """Start a replica on the test's database: ``replica("--role", "api", agent=...)``.

    Every replica gets ``--lease 2`` and ``--drain-timeout 1`` unless its arguments say
    otherwise (later flags win); all are stopped (and continued first, if paused) afterwards.
    """
    servers: list[ServerProcess] = []

    def start(*args: str, agent: str = "replica_agents:router") -> ServerProcess:
        server = ServerProcess(
            postgres_database.url,
            agent=agent,
            args=["--lease", LEASE, "--drain-timeout", "1", *args],
            log_dir=tmp_path,
        )
        servers.append(server)
        return server.start(timeout=60.0)

    yield start
    for server in servers:
        if server.proc is not None and server.proc.poll() is None:
            server.proc.send_signal(signal.SIGCONT)
            server.stop(timeout=30.0)


# -- helpers -------------------------------------------------------------------------------------


def pid(server: ServerProcess) -> int:
    assert server.proc is not None
    return server.proc.pid


def logs(*servers: ServerProcess) -> str:
    """The servers' logs, for assertion messages."""
    return "\n".join(f"--- replica :{s.port} ---\n{s.log()[-6000:]}" for s in servers)


def health(server: ServerProcess) -> Event:
    body: Event = httpx.get(f"{server.url}/healthz", timeout=30.0).json()
    return body


def marker_lines(marker: Path) -> list[str]:
    try:
        return marker.read_text().splitlines()
    except FileNotFoundError:
        return []


def wait_for_line(marker: Path, line: str, timeout: float = EVENTUALLY * 2) -> None:
    deadline = time.monotonic() + timeout
    while line not in marker_lines(marker):
        assert time.monotonic() < deadline, (
            f"{marker.name} has {marker_lines(marker)}, not {line!r}"
        )
        time.sleep(0.05)


def deltas(events: list[Event]) -> str:
    return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")


def messages(response: Event) -> list[tuple[str, str]]:
    """``(status, text)`` of each message of a response's output."""
    return [
        (
            item["status"],
            "".join(p["text"] for p in item["content"] if p["type"] == "output_text"),
        )
        for item in response["output"]
        if item["type"] == "message"
    ]


def assert_log_ends(events: list[Event], terminal_type: str, status: str) -> None:
    """Gapless from 0, exactly one terminal event, the last, with the given status."""
    assert [e["sequence_number"] for e in events] == list(range(len(events))), "a gap"
    assert [e["type"] for e in events if e["type"] in TERMINAL_TYPES] == [terminal_type]
    assert events[-1]["type"] == terminal_type
    assert events[-1]["response"]["status"] == status


class Tail:
    """A client streaming one response through one replica from event 0, in a thread.

    ``Tail(server, response_id)`` resumes a response's stream; ``Tail(server, body=...)`` is the
    stream of a create request (``POST /v1/responses`` with ``stream: true``).
    """

    def __init__(
        self, server: ServerProcess, response_id: str = "", body: dict[str, Any] | None = None
    ) -> None:
        self.events: list[Event] = []
        self.error: str | None = None
        self._thread = threading.Thread(
            target=self._read, args=(server, response_id, body), daemon=True
        )
        self._thread.start()

    def _read(self, server: ServerProcess, response_id: str, body: dict[str, Any] | None) -> None:
        try:
            with httpx.Client(base_url=server.url, timeout=STREAM_READ_TIMEOUT) as http:
                if body is None:
                    url = f"/v1/responses/{response_id}"
                    request = http.build_request("GET", url, params={"stream": "true"})
                else:
                    request = http.build_request("POST", "/v1/responses", json=body)
                r = http.send(request, stream=True)
                try:
                    if r.status_code != 200:
                        self.error = f"{r.status_code}: {r.read()!r}"
                        return
                    for event in iter_sse(r.iter_lines()):
                        self.events.append(event)
                finally:
                    r.close()
        except httpx.HTTPError as exc:
            self.error = repr(exc)

    def text(self) -> str:
        return deltas(list(self.events))

    def wait_for_text(self, chars: int, timeout: float = EVENTUALLY) -> None:
        wait_until(lambda: len(self.text()) >= chars, f"the tail received {chars} chars", timeout)

    def join(self, timeout: float = TAKEOVER_WAIT) -> list[Event]:
        """Every event the stream delivered, once it has ended by itself."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the stream did not end"
        assert self.error is None, self.error
        return self.events

    def join_cut(self, timeout: float = EVENTUALLY) -> list[Event]:
        """The events delivered before the connection broke (its replica died)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the stream of a dead replica did not end"
        return self.events


def create(server: ServerProcess, model: str, prompt: str) -> str:
    with server.client() as client:
        return client.responses.create(model=model, input=prompt, background=True).id


# -- one run, many replicas ----------------------------------------------------------------------


def test_a_run_created_on_one_replica_is_polled_streamed_resumed_and_chained_through_another(
    replica: Replicas, tmp_path: Path
) -> None:
    a, b = replica(), replica()
    marker = tmp_path / "marker"
    with a.client() as on_a, b.client() as on_b:
        created = on_a.responses.create(
            model="ticks", input=f"n=100 delay=0.03 marker={marker}", background=True
        )
        rid = created.id
        assert created.status == "queued"
        wait_for_line(marker, f"started {pid(a)}")  # it runs where it was created: A had room

        # Poll through B: the progress A stored, under the SDK's strict validation.
        wait_until(lambda: on_b.responses.retrieve(rid).output_text != "", "B shows progress")
        assert ticks_text(100).startswith(on_b.responses.retrieve(rid).output_text)

        # Stream through B, drop the connection, resume through B after the last event seen.
        first: list[Any] = []
        with on_b.responses.retrieve(rid, stream=True) as stream:
            for event in stream:
                first.append(event)
                if len(first) == 10:
                    break
        after = first[-1].sequence_number
        rest = list(on_b.responses.retrieve(rid, stream=True, starting_after=after))

        log = replay(b, rid)
        assert log == replay(a, rid)
        assert_log_ends(log, "response.completed", "completed")
        assert [(e.sequence_number, e.type) for e in first + rest] == [
            (e["sequence_number"], e["type"]) for e in log
        ]
        assert deltas(log) == ticks_text(100)
        assert get_json(b, rid) == get_json(a, rid)
        assert on_b.responses.retrieve(rid).output_text == ticks_text(100)
        assert len(on_b.responses.input_items.list(rid).data) == 1

        # A turn chained through B onto a response A ran sees A's output.
        turn = on_b.responses.create(model="context", input="and next?", previous_response_id=rid)
        given = json.loads(turn.output_text)
        assert given["previous_response_id"] == rid
        assert ticks_text(100) in json.dumps(given["input"])

        on_b.responses.delete(rid)  # the SDK returns nothing; a failure would raise
        for client in (on_a, on_b):
            with pytest.raises(openai.NotFoundError):
                client.responses.retrieve(rid)
    assert marker_lines(marker) == [f"started {pid(a)}", f"finished {pid(a)}"]


def test_a_poll_through_another_replica_holds_every_event_committed_so_far(
    replica: Replicas, tmp_path: Path
) -> None:
    # The executing replica stores the run's snapshot only now and then; B folds the events
    # committed since into it, so a poll (and a listing) through B is never behind B's stream.
    a, b = replica(), replica()
    marker = tmp_path / "marker"
    with a.client() as on_a, b.client() as on_b:
        rid = on_a.responses.create(
            model="ticks", input=f"n=40 delay=0.05 marker={marker}", background=True
        ).id
        wait_for_line(marker, f"started {pid(a)}")
        streamed, deltas_seen, polls = "", 0, 0
        with on_b.responses.retrieve(rid, stream=True) as stream:
            for event in stream:
                if event.type != "response.output_text.delta":
                    continue
                streamed += event.delta
                deltas_seen += 1
                if deltas_seen % 5 == 0 and deltas_seen <= 30:  # (10 more to come: 0.5 s)
                    polled = on_b.responses.retrieve(rid)
                    assert polled.status == "in_progress"
                    assert polled.output_text.startswith(streamed)
                    assert ticks_text(40).startswith(polled.output_text)
                    listed = httpx.get(f"{b.url}/v1/responses", params={"limit": 1}).json()
                    [row] = listed["data"]
                    assert row["id"] == rid
                    assert "".join(
                        part["text"] for item in row["output"] for part in item["content"]
                    ).startswith(streamed)
                    polls += 1
        assert polls >= 3
        assert on_b.responses.retrieve(rid).output_text == ticks_text(40)


def test_tails_on_other_replicas_get_every_event_of_a_live_run_once_and_in_order(
    replica: Replicas, tmp_path: Path
) -> None:
    a, b, c = replica(), replica(), replica()
    marker = tmp_path / "marker"

    # An endless run on A: tails on B and C must receive its events while it runs, pushed to them
    # (a replica that only re-read the store on its 15 s keep-alive would miss the wait below).
    endless = create(a, "ticks", f"delay=0.02 marker={marker}")
    wait_for_line(marker, f"started {pid(a)}")
    tails = [Tail(b, endless), Tail(c, endless), Tail(b, endless)]
    for tail in tails:
        tail.wait_for_text(len(ticks_text(40)))
    assert status_of(a, endless) == "in_progress"
    with c.client() as on_c:
        assert on_c.responses.cancel(endless).status == "cancelled"
    wait_for_line(marker, f"cancelled {pid(a)}")
    log = replay(a, endless)
    assert_log_ends(log, "response.incomplete", "cancelled")
    for tail in tails:
        assert tail.join() == log
    assert ticks_text(10_000).startswith(deltas(log))

    # A finite run: every tail's text is exactly the agent's.
    finite = create(a, "ticks", "n=150 delay=0.005")
    tails = [Tail(b, finite), Tail(c, finite)]
    streams = [tail.join() for tail in tails]
    assert streams[0] == streams[1] == replay(c, finite)
    assert_log_ends(streams[0], "response.completed", "completed")
    assert deltas(streams[0]) == ticks_text(150)

    # A burst of 20,000 events as fast as A can commit them: notifications coalesce, tails that
    # fall behind go back to the store, and still every event arrives once, in order.
    burst = create(a, "count", "n=20000")
    tails = [Tail(b, burst), Tail(c, burst), Tail(b, burst)]
    streams = [tail.join() for tail in tails]
    log = replay(c, burst)
    assert streams == [log, log, log]
    assert_log_ends(log, "response.completed", "completed")
    assert deltas(log) == "".join(f"{i} " for i in range(20000))


def test_cancel_and_delete_through_another_replica_stop_the_agent_where_it_runs(
    replica: Replicas, tmp_path: Path
) -> None:
    a, b = replica(), replica()
    cancelled_marker, deleted_marker = tmp_path / "cancelled", tmp_path / "deleted"
    to_cancel = create(a, "hold", f"marker={cancelled_marker}")
    to_delete = create(a, "hold", f"marker={deleted_marker}")
    wait_for_line(cancelled_marker, f"started {pid(a)}")
    wait_for_line(deleted_marker, f"started {pid(a)}")
    tail = Tail(b, to_cancel)
    wait_until(lambda: bool(tail.events), "the tail on B started")

    with b.client() as on_b:
        assert on_b.responses.cancel(to_cancel).status == "cancelled"
        # The agent on A observed the cancellation: CancelledError at its await.
        wait_for_line(cancelled_marker, f"cancelled {pid(a)}")
        assert status_of(a, to_cancel) == "cancelled"
        assert on_b.responses.cancel(to_cancel).status == "cancelled"  # again: unchanged
        log = replay(a, to_cancel)
        assert_log_ends(log, "response.incomplete", "cancelled")
        assert tail.join() == log == replay(b, to_cancel)

        on_b.responses.delete(to_delete)
        wait_for_line(deleted_marker, f"cancelled {pid(a)}")
        for server in (a, b):
            r = httpx.get(f"{server.base_url}/responses/{to_delete}", timeout=30.0)
            assert r.status_code == 404, r.text
    wait_until(lambda: health(a)["running"] == 0, "A runs nothing any more")


def test_a_finished_response_deleted_through_one_replica_is_gone_at_once_from_every_other(
    replica: Replicas,
) -> None:
    a, b = replica(), replica()
    ids = [create(a, "ticks", "n=3 delay=0") for _ in range(20)]
    for rid in ids:
        wait_terminal(b, rid, TAKEOVER_WAIT)  # B has read it finished (and may keep it in memory)
    with httpx.Client(timeout=30.0) as http:
        for rid in ids:
            assert http.delete(f"{a.base_url}/responses/{rid}").status_code == 200
            # No pause: B must not serve it from memory before A's notification reaches B.
            after = http.get(f"{b.base_url}/responses/{rid}")
            assert after.status_code == 404, after.text


def test_a_run_waiting_in_the_shared_queue_is_cancelled_through_any_replica_and_never_starts(
    replica: Replicas, tmp_path: Path
) -> None:
    worker = replica("--max-running", "1")
    api = replica("--role", "api")
    running_marker, queued_marker = tmp_path / "running", tmp_path / "queued"
    running = create(api, "hold", f"marker={running_marker}")
    wait_for_line(running_marker, f"started {pid(worker)}")
    queued = create(api, "hold", f"marker={queued_marker}")
    assert status_of(api, queued) == "queued"

    with api.client() as on_api:
        assert on_api.responses.cancel(queued).status == "cancelled"
        assert on_api.responses.cancel(running).status == "cancelled"
        # The only slot is free: a later run completing shows the queue moved past the cancelled.
        later = create(api, "ticks", "n=3 delay=0")
        assert wait_terminal(api, later, TAKEOVER_WAIT)["status"] == "completed"
    assert not queued_marker.exists(), "the cancelled queued run's agent was called"
    log = replay(worker, queued)
    assert_log_ends(log, "response.incomplete", "cancelled")
    assert "response.in_progress" not in [e["type"] for e in log]


# -- roles and work sharing ----------------------------------------------------------------------


def test_api_replicas_never_execute_and_worker_replicas_execute_what_they_queue(
    replica: Replicas, tmp_path: Path
) -> None:
    api = replica("--role", "api")
    markers = [tmp_path / f"run{i}" for i in range(3)]
    # No worker yet: the runs wait in the shared queue; the api replica does not run them.
    ids = [create(api, "ticks", f"n=5 delay=0.01 marker={m}") for m in markers]
    for rid in ids:
        assert status_of(api, rid) == "queued"
    assert health(api)["running"] == 0

    worker = replica("--role", "worker")
    # A worker serves health checks, not the Responses API.
    assert health(worker)["worker"] is not None
    assert httpx.get(f"{worker.base_url}/responses/{ids[0]}", timeout=30.0).status_code == 404
    for rid, marker in zip(ids, markers, strict=True):
        assert wait_terminal(api, rid, TAKEOVER_WAIT)["status"] == "completed"
        assert get_json(api, rid)["output"][0]["content"][0]["text"] == ticks_text(5)
        assert marker_lines(marker) == [f"started {pid(worker)}", f"finished {pid(worker)}"]

    # The worker hands the agent of a chained turn the whole chain, as the creating replica would.
    with api.client() as on_api:
        turn = on_api.responses.create(
            model="context", input="and next?", previous_response_id=ids[0], background=True
        )
    given = json.loads(messages(wait_terminal(api, turn.id, TAKEOVER_WAIT))[0][1])
    assert given["previous_response_id"] == ids[0]
    assert given["input_text"] == "and next?"
    assert ticks_text(5) in json.dumps(given["input"])

    # A run created on the api replica while a worker is up runs on the worker, and a stream
    # and a cancel through the api replica reach it.
    held = tmp_path / "held"
    rid = create(api, "hold", f"marker={held}")
    wait_for_line(held, f"started {pid(worker)}")
    assert health(worker)["running"] == 1
    assert health(api)["running"] == 0
    tail = Tail(api, rid)
    with api.client() as on_api:
        assert on_api.responses.cancel(rid).status == "cancelled"
    wait_for_line(held, f"cancelled {pid(worker)}")
    assert_log_ends(tail.join(), "response.incomplete", "cancelled")
    assert f"{rid} claimed" in worker.log()
    assert f"{rid} in_progress" not in api.log()

    # The stream of a create request through the api replica follows the run on the worker.
    body = {"model": "ticks", "input": "n=30 delay=0.01", "background": True, "stream": True}
    streamed = Tail(api, body=body).join()
    assert_log_ends(streamed, "response.completed", "completed")
    assert deltas(streamed) == ticks_text(30)
    assert streamed == replay(api, streamed[0]["response"]["id"])


def test_runs_beyond_one_replicas_capacity_are_executed_by_another(
    replica: Replicas, tmp_path: Path
) -> None:
    a = replica("--max-running", "1")
    b = replica()
    markers = [tmp_path / f"run{i}" for i in range(3)]
    ids = [create(a, "hold", f"marker={m}") for m in markers]
    wait_for_line(markers[0], f"started {pid(a)}")
    for marker in markers[1:]:
        wait_for_line(marker, f"started {pid(b)}")
    assert health(a)["running"] == 1
    assert health(b)["running"] == 2
    with a.client() as on_a:
        for rid in ids:
            assert on_a.responses.cancel(rid).status == "cancelled"
    for marker in markers:
        assert len(marker_lines(marker)) == 2 and marker_lines(marker)[1].startswith("cancelled")


def test_a_foreground_request_through_an_api_replica_is_executed_by_a_worker(
    replica: Replicas, tmp_path: Path
) -> None:
    api = replica("--role", "api")
    worker = replica("--role", "worker")
    marker, streamed_marker = tmp_path / "marker", tmp_path / "streamed"
    with api.client(timeout=60.0) as on_api:
        response = on_api.responses.create(model="ticks", input=f"n=5 delay=0 marker={marker}")
        assert response.status == "completed"
        assert response.output_text == ticks_text(5)
        prompt = f"n=5 delay=0 marker={streamed_marker}"
        events = list(on_api.responses.create(model="ticks", input=prompt, stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].type == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == ticks_text(5)
    for m in (marker, streamed_marker):
        assert marker_lines(m) == [f"started {pid(worker)}", f"finished {pid(worker)}"]


def test_a_foreground_request_to_a_full_replica_is_executed_by_another(
    replica: Replicas, tmp_path: Path
) -> None:
    a = replica("--max-running", "1")
    b = replica()
    held, marker = tmp_path / "held", tmp_path / "marker"
    running = create(a, "hold", f"marker={held}")
    wait_for_line(held, f"started {pid(a)}")
    with a.client(timeout=60.0) as on_a:
        # A's only slot stays taken: the request can only be answered by B running it.
        response = on_a.responses.create(model="ticks", input=f"n=5 delay=0 marker={marker}")
        assert response.status == "completed"
        assert response.output_text == ticks_text(5)
        assert on_a.responses.cancel(running).status == "cancelled"
    assert marker_lines(marker) == [f"started {pid(b)}", f"finished {pid(b)}"]


# -- replicas that die or stall ------------------------------------------------------------------


def test_runs_of_a_killed_replica_end_failed_and_its_streams_elsewhere_end_with_that(
    replica: Replicas, tmp_path: Path
) -> None:
    a, b = replica(), replica()
    ids = [create(a, "ticks", "delay=0.02") for _ in range(3)]
    held = tmp_path / "held"
    ids.append(create(a, "hold", f"marker={held}"))
    wait_for_line(held, f"started {pid(a)}")
    tails = {rid: Tail(b, rid) for rid in ids}
    # And a client that created its run on A with stream: true, so its connection dies with A.
    body = {"model": "ticks", "input": "delay=0.02", "background": True, "stream": True}
    on_a = Tail(a, body=body)
    on_a.wait_for_text(len(ticks_text(10)))
    for rid in ids[:3]:
        tails[rid].wait_for_text(len(ticks_text(10)))
    wait_until(lambda: bool(tails[ids[3]].events), "the tail of the held run started")
    # What clients received before the kill, so committed.
    received = {rid: list(tail.events) for rid, tail in tails.items()}

    a.kill()

    # The client of A resumes through B after the last event it got, and gets the rest.
    cut = on_a.join_cut()
    created_id = cut[0]["response"]["id"]
    response = wait_terminal(b, created_id, TAKEOVER_WAIT)
    assert response["status"] == "failed", response
    log = replay(b, created_id)
    with httpx.Client(base_url=b.url, timeout=STREAM_READ_TIMEOUT) as http:
        params = {"stream": "true", "starting_after": str(cut[-1]["sequence_number"])}
        rest = list(iter_sse(http.get(f"/v1/responses/{created_id}", params=params).iter_lines()))
    assert cut + rest == log
    assert_log_ends(log, "response.failed", "failed")

    for rid in ids:
        response = wait_terminal(b, rid, TAKEOVER_WAIT)
        assert response["status"] == "failed", response
        assert WORKER_STOPPED in response["error"]["message"].lower(), logs(b)
        log = replay(b, rid)
        assert_log_ends(log, "response.failed", "failed")
        assert log[-1]["response"]["error"] == response["error"]
        assert log[: len(received[rid])] == received[rid], "an event a client got was lost"
        # The stream open on B through the takeover delivered the whole log, exactly once.
        assert tails[rid].join() == log
        assert "".join(text for _, text in messages(response)) == deltas(log)
    # The survivor keeps serving.
    later = create(b, "ticks", "n=5 delay=0")
    assert wait_terminal(b, later, TAKEOVER_WAIT)["status"] == "completed"


def test_a_retry_safe_run_of_a_killed_replica_runs_again_on_another_and_says_which_attempt(
    replica: Replicas, tmp_path: Path
) -> None:
    a = replica(agent="replica_agents:retried")
    b = replica(agent="replica_agents:retried")
    marker = tmp_path / "marker"
    rid = create(a, "ticks", f"n=60 delay=0.05 marker={marker}")
    wait_for_line(marker, f"started {pid(a)}")
    tail = Tail(b, rid)
    tail.wait_for_text(len(ticks_text(5)))
    received = list(tail.events)

    a.kill()

    response = wait_terminal(b, rid, timeout=TAKEOVER_WAIT + 30)
    assert response["status"] == "completed", response
    assert response["metadata"]["outlast_attempt"] == "2"
    assert marker_lines(marker) == [f"started {pid(a)}", f"started {pid(b)}", f"finished {pid(b)}"]
    log = replay(b, rid)
    assert_log_ends(log, "response.completed", "completed")
    assert log[: len(received)] == received
    assert tail.join() == log  # the stream on B went on through the retry
    types = [e["type"] for e in log]
    # Queued at creation, started, queued again for the second attempt, started again.
    lifecycle = [t for t in types if t in ("response.queued", "response.in_progress")]
    assert lifecycle == ["response.queued", "response.in_progress"] * 2
    # The stopped attempt's message stays in the output, closed incomplete; the last is whole.
    *stopped, last = messages(response)
    assert last == ("completed", ticks_text(60))
    assert stopped and all(status == "incomplete" for status, _ in stopped)
    assert all(ticks_text(60).startswith(text) for _, text in stopped)
    with b.client() as on_b:
        # The SDK's strict types accept the whole log, the re-queue included.
        assert [e.type for e in on_b.responses.retrieve(rid, stream=True)] == types
        assert on_b.responses.retrieve(rid).metadata == {"outlast_attempt": "2"}


def test_max_attempts_retries_any_agent_until_the_attempts_run_out(
    replica: Replicas, tmp_path: Path
) -> None:
    a, b, c = (replica("--max-attempts", "2") for _ in range(3))
    by_pid = {pid(s): s for s in (a, b, c)}
    marker = tmp_path / "marker"
    rid = create(a, "ticks", f"delay=0.05 marker={marker}")
    wait_for_line(marker, f"started {pid(a)}")
    wait_until(lambda: messages(get_json(a, rid)) != [], "attempt 1 produced text")

    a.kill()
    # Re-queued, and started by one of the survivors: attempt 2.
    wait_until(lambda: len(marker_lines(marker)) >= 2, "the run started again", TAKEOVER_WAIT)
    second = by_pid[int(marker_lines(marker)[1].split()[1])]
    assert second in (b, c)
    survivor = c if second is b else b

    def second_attempt_text(reader: ServerProcess) -> str:
        """The text of the message attempt 2 is writing (attempt 1's was closed incomplete)."""
        attempts = messages(get_json(reader, rid))
        return attempts[1][1] if len(attempts) > 1 else ""

    # Read where attempt 2 runs first, then through the survivor (from the store). Twice in
    # full parallel suites the survivor's read did not show attempt 2's text within the wait,
    # though attempt 2 was running; the messages below say what each replica showed if so.
    wait_until(lambda: second_attempt_text(second) != "", "attempt 2 produced text", TAKEOVER_WAIT)
    try:
        wait_until(lambda: second_attempt_text(survivor) != "", "the survivor shows attempt 2")
    except AssertionError:
        raise AssertionError(
            f"executing: {messages(get_json(second, rid))}\n"
            f"survivor: {get_json(survivor, rid)}\n{logs(second, survivor)}"
        ) from None
    assert get_json(survivor, rid)["metadata"]["outlast_attempt"] == "2"

    second.kill()
    response = wait_terminal(survivor, rid, TAKEOVER_WAIT)
    assert response["status"] == "failed", response
    assert WORKER_STOPPED in response["error"]["message"].lower()
    assert len(marker_lines(marker)) == 2, "a third attempt was started"
    assert_log_ends(replay(survivor, rid), "response.failed", "failed")


def test_a_stalled_replica_cannot_append_to_a_run_another_took_over_and_serves_on(
    replica: Replicas, tmp_path: Path
) -> None:
    a, b = replica(), replica()
    marker = tmp_path / "marker"
    rid = create(a, "ticks", f"delay=0.01 marker={marker}")
    # Busy runs keep A's writer in a transaction most of the time: the pause is likely to catch
    # A holding row locks, which must not hold up the takeover.
    busy = [create(a, "ticks", "delay=0.002") for _ in range(6)]
    wait_for_line(marker, f"started {pid(a)}")
    tail = Tail(b, rid)
    tail.wait_for_text(len(ticks_text(20)))
    stale_worker = health(a)["worker"]
    assert a.proc is not None

    a.proc.send_signal(signal.SIGSTOP)  # paused mid-run, past its lease
    try:
        for run in [rid, *busy]:
            response = wait_terminal(b, run, TAKEOVER_WAIT)
            assert response["status"] == "failed", response
            assert WORKER_STOPPED in response["error"]["message"].lower()
        taken_over = replay(b, rid)
        assert_log_ends(taken_over, "response.failed", "failed")
        assert tail.join() == taken_over
        busy_logs = [replay(b, run) for run in busy]
    finally:
        a.proc.send_signal(signal.SIGCONT)

    # A wakes up with a run it believes it holds: it must notice, stop its copy and rejoin.
    wait_for_line(marker, f"cancelled {pid(a)}")
    wait_until(lambda: health(a)["worker"] != stale_worker, "A rejoined as a new worker")
    wait_until(lambda: health(a)["running"] == 0, "A runs nothing any more")
    after = replay(b, rid)
    assert after == taken_over, "the stale replica appended to a run it no longer held"
    assert after[-1]["sequence_number"] == taken_over[-1]["sequence_number"]
    assert [replay(b, run) for run in busy] == busy_logs
    assert get_json(a, rid) == get_json(b, rid)

    # And it serves and executes again.
    again = tmp_path / "again"
    later = create(a, "ticks", f"n=5 delay=0 marker={again}")
    assert wait_terminal(a, later, TAKEOVER_WAIT)["status"] == "completed"
    assert marker_lines(again) == [f"started {pid(a)}", f"finished {pid(a)}"]


def test_a_lone_replica_paused_past_its_lease_keeps_its_runs(
    replica: Replicas, tmp_path: Path
) -> None:
    # Nobody else could have taken its runs over: waking up, it renews its lease and carries on
    # (its own takeover sweep never counts it among the dead).
    a = replica()
    marker = tmp_path / "marker"
    rid = create(a, "ticks", f"n=200 delay=0.01 marker={marker}")
    tail = Tail(a, rid)
    tail.wait_for_text(len(ticks_text(10)))
    worker = health(a)["worker"]
    assert a.proc is not None
    a.proc.send_signal(signal.SIGSTOP)
    try:
        time.sleep(2 * 2.0 + 1.0)  # twice its lease, and then some
    finally:
        a.proc.send_signal(signal.SIGCONT)

    assert wait_terminal(a, rid, TAKEOVER_WAIT)["status"] == "completed"
    log = tail.join()
    assert log == replay(a, rid)
    assert deltas(log) == ticks_text(200)
    assert health(a)["worker"] == worker
    assert marker_lines(marker) == [f"started {pid(a)}", f"finished {pid(a)}"]


def test_a_retry_safe_run_of_a_stalled_replica_runs_again_and_the_stale_copy_never_writes(
    replica: Replicas, tmp_path: Path
) -> None:
    a = replica(agent="replica_agents:retried")
    b = replica(agent="replica_agents:retried")
    marker = tmp_path / "marker"
    rid = create(a, "ticks", f"n=40 delay=0.05 marker={marker}")
    wait_for_line(marker, f"started {pid(a)}")
    tail = Tail(b, rid)
    tail.wait_for_text(len(ticks_text(3)))
    assert a.proc is not None

    a.proc.send_signal(signal.SIGSTOP)
    try:
        # Attempt 2 runs on B, to the end, while A's copy is frozen mid-run.
        response = wait_terminal(b, rid, timeout=TAKEOVER_WAIT + 30)
        assert response["status"] == "completed", response
        log = tail.join()
    finally:
        a.proc.send_signal(signal.SIGCONT)

    # A's copy wakes up believing it runs attempt 1: it is stopped and writes nothing.
    wait_for_line(marker, f"cancelled {pid(a)}")
    wait_until(lambda: health(a)["running"] == 0, "A stopped its copy")
    assert replay(b, rid) == log
    assert_log_ends(log, "response.completed", "completed")
    assert messages(response)[-1] == ("completed", ticks_text(40))
    # Normally: started on A, started on B, finished on B, A's copy cancelled (attempt 2). On a
    # slow machine A's lease may also lapse before the pause, which spends one more attempt: the
    # response still names the attempt that produced it, and only B's copy ever finished.
    lines = marker_lines(marker)
    starts = [line for line in lines if line.startswith("started ")]
    assert starts[0] == f"started {pid(a)}"
    assert starts[-1] == f"started {pid(b)}"
    assert response["metadata"]["outlast_attempt"] == str(len(starts))
    assert [line for line in lines if line.startswith("finished ")] == [f"finished {pid(b)}"]
    assert lines.count(f"cancelled {pid(a)}") == lines.count(f"started {pid(a)}")


def test_a_cancel_requested_while_the_executing_replica_is_stalled_ends_the_run_cancelled(
    replica: Replicas, tmp_path: Path
) -> None:
    a, b = replica(), replica()
    held = tmp_path / "held"
    rid = create(a, "hold", f"marker={held}")
    wait_for_line(held, f"started {pid(a)}")
    tail = Tail(b, rid)
    wait_until(lambda: bool(tail.events), "the tail on B started")
    assert a.proc is not None

    a.proc.send_signal(signal.SIGSTOP)
    try:
        with b.client(timeout=60.0) as on_b:
            on_b.responses.cancel(rid)  # recorded; the replica running it cannot act on it now
        # The client asked for a cancel: when the run is taken over, that is its outcome.
        response = wait_terminal(b, rid, TAKEOVER_WAIT)
        assert response["status"] == "cancelled", response
        log = replay(b, rid)
        assert_log_ends(log, "response.incomplete", "cancelled")
        assert tail.join() == log
    finally:
        a.proc.send_signal(signal.SIGCONT)
    wait_for_line(held, f"cancelled {pid(a)}")
    wait_until(lambda: health(a)["running"] == 0, "A stopped its copy")
    assert replay(b, rid) == log


# -- graceful shutdown ---------------------------------------------------------------------------


def test_sigterm_of_one_replica_finishes_or_fails_its_runs_while_others_keep_serving(
    replica: Replicas, tmp_path: Path
) -> None:
    a = replica("--drain-timeout", "6")
    b = replica()
    held = tmp_path / "held"
    short = create(a, "ticks", "n=10 delay=0.1")
    long = create(a, "hold", f"marker={held}")
    wait_for_line(held, f"started {pid(a)}")
    tails = {rid: Tail(b, rid) for rid in (short, long)}
    # A client of A following a run that executes on B: A's shutdown ends its stream, not the run.
    elsewhere = create(b, "ticks", "delay=0.05")
    through_a = Tail(a, elsewhere)
    wait_until(lambda: all(t.events for t in [*tails.values(), through_a]), "the tails started")
    assert a.proc is not None

    a.proc.send_signal(signal.SIGTERM)
    # B serves throughout A's drain.
    during = create(b, "ticks", "n=3 delay=0")
    assert wait_terminal(b, during, TAKEOVER_WAIT)["status"] == "completed"
    assert a.proc.wait(60.0) == 0

    short_log = tails[short].join()
    assert_log_ends(short_log, "response.completed", "completed")
    assert deltas(short_log) == ticks_text(10)
    long_log = tails[long].join()
    assert_log_ends(long_log, "response.failed", "failed")
    assert "shut down" in long_log[-1]["response"]["error"]["message"]
    assert marker_lines(held) == [f"started {pid(a)}", f"cancelled {pid(a)}"]
    assert replay(b, long) == long_log
    assert health(b)["status"] == "ok"

    # A ended that stream cleanly once its own runs had ended (the client was not left to a
    # cut connection), short of the run's end; the client resumes through B exactly after it.
    cut = through_a.join()
    assert cut[-1]["type"] not in TERMINAL_TYPES
    assert status_of(b, elsewhere) == "in_progress"
    with b.client() as on_b:
        assert on_b.responses.cancel(elsewhere).status == "cancelled"
    with httpx.Client(base_url=b.url, timeout=STREAM_READ_TIMEOUT) as http:
        params = {"stream": "true", "starting_after": str(cut[-1]["sequence_number"])}
        rest = list(iter_sse(http.get(f"/v1/responses/{elsewhere}", params=params).iter_lines()))
    log = replay(b, elsewhere)
    assert cut + rest == log
    assert_log_ends(log, "response.incomplete", "cancelled")


def test_sigterm_hands_a_retry_safe_run_and_queued_runs_to_other_replicas(
    replica: Replicas, tmp_path: Path
) -> None:
    a = replica("--max-running", "1", agent="replica_agents:retried")
    api = replica("--role", "api", agent="replica_agents:retried")
    running_marker, queued_marker = tmp_path / "running", tmp_path / "queued"
    running = create(a, "ticks", f"n=100 delay=0.05 marker={running_marker}")
    wait_for_line(running_marker, f"started {pid(a)}")
    queued = create(api, "ticks", f"n=5 delay=0 marker={queued_marker}")
    assert status_of(api, queued) == "queued"
    tail = Tail(api, running)
    tail.wait_for_text(len(ticks_text(3)))

    assert a.stop(signal.SIGTERM, timeout=60.0) == 0
    assert not queued_marker.exists()
    worker = replica("--role", "worker", agent="replica_agents:retried")

    for rid in (running, queued):
        assert wait_terminal(api, rid, TAKEOVER_WAIT)["status"] == "completed", logs(a, api, worker)
    assert marker_lines(queued_marker) == [f"started {pid(worker)}", f"finished {pid(worker)}"]
    assert marker_lines(running_marker) == [
        f"started {pid(a)}",
        f"cancelled {pid(a)}",
        f"started {pid(worker)}",
        f"finished {pid(worker)}",
    ]
    response = get_json(api, running)
    assert response["metadata"]["outlast_attempt"] == "2"
    assert messages(response)[-1] == ("completed", ticks_text(100))
    log = tail.join()
    assert log == replay(api, running)
    assert_log_ends(log, "response.completed", "completed")


# -- the database ----------------------------------------------------------------------------------


def _local_cluster() -> list[str] | None:
    """``[version, "main"]`` of the local cluster the test database lives on, if this process
    may restart it (root, pg_ctlcluster, and the test database on 127.0.0.1:5432)."""
    parts = urlsplit(postgres_admin_url())
    if parts.hostname not in ("127.0.0.1", "localhost") or (parts.port or 5432) != 5432:
        return None
    config = Path("/etc/postgresql")
    if shutil.which("pg_ctlcluster") is None or not config.is_dir() or os.geteuid() != 0:
        return None
    versions = sorted((p.name for p in config.iterdir()), key=lambda v: float(v))
    return [versions[-1], "main"] if versions else None


def _pg_ctlcluster(action: str) -> None:
    cluster = _local_cluster()
    assert cluster is not None
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, action],
        check=True,
        timeout=120,
        capture_output=True,
    )


def _postgres_answers(url: str) -> bool:
    async def ping() -> None:
        conn = await asyncpg.connect(url, timeout=5)
        await conn.close()

    try:
        asyncio.run(ping())
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    return True


@pytest.mark.exclusive  # it restarts the server every other PostgreSQL test is using
@pytest.mark.skipif(
    _local_cluster() is None,
    reason="needs the test database on a local PostgreSQL cluster that pg_ctlcluster can restart",
)
def test_replicas_survive_a_database_restart_and_leave_no_run_stuck(
    replica: Replicas, postgres_database: TestDatabase, tmp_path: Path
) -> None:
    a = replica("--lease", "5")
    b = replica("--lease", "5")
    endless = create(a, "ticks", "delay=0.05")
    finite = create(a, "ticks", "n=100 delay=0.05")
    elsewhere = create(b, "ticks", "n=60 delay=0.05")
    tail = Tail(b, endless)
    tail.wait_for_text(len(ticks_text(3)))

    # The cluster is shared with other test sessions: one restart, which takes about a second.
    try:
        _pg_ctlcluster("restart")
    finally:
        if not _postgres_answers(postgres_database.url):
            with contextlib.suppress(subprocess.SubprocessError):
                _pg_ctlcluster("start")  # never leave it down
        wait_until(lambda: _postgres_answers(postgres_database.url), "PostgreSQL is back", 120.0)

    # Both replicas serve again (they reconnect by themselves).
    def serves(server: ServerProcess) -> bool:
        try:
            rid = create(server, "ticks", "n=2 delay=0")
        except openai.APIError:
            return False
        return wait_terminal(server, rid, TAKEOVER_WAIT)["status"] == "completed"

    for server in (a, b):
        wait_until(lambda server=server: serves(server), "the replica serves again", 60.0)
    # Runs in flight went on or ended failed; none is stuck.
    with b.client() as on_b, contextlib.suppress(openai.APIError):
        on_b.responses.cancel(endless)
    for rid in (endless, finite, elsewhere):
        response = wait_terminal(b, rid, timeout=90.0)
        assert response["status"] in ("completed", "failed", "cancelled"), response
        log = replay(b, rid)
        assert [e["sequence_number"] for e in log] == list(range(len(log)))
        assert [e for e in log if e["type"] in TERMINAL_TYPES] == [log[-1]]
        if response["status"] == "completed":
            assert deltas(log) == ticks_text(100 if rid == finite else 60)
    assert tail.join(timeout=90.0) == replay(b, endless)


def _drop_connections(url: str) -> int:
    """Make PostgreSQL end every other connection to this test's database (nobody else's)."""

    async def drop() -> int:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            count = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return int(count)
        finally:
            await conn.close()

    return asyncio.run(drop())


def test_replicas_reconnect_when_the_database_drops_their_connections(
    replica: Replicas, postgres_database: TestDatabase
) -> None:
    a, b = replica(), replica()
    endless = create(a, "ticks", "delay=0.02")
    finite = create(a, "ticks", "n=150 delay=0.02")
    tail = Tail(b, endless)
    tail.wait_for_text(len(ticks_text(5)))

    for _ in range(2):
        assert _drop_connections(postgres_database.url) > 0  # pools and listeners of both
        # Events keep reaching B's reader: its notifications came back (the wait is far shorter
        # than the reader's 15 s keep-alive re-read).
        tail.wait_for_text(len(tail.text()) + len("tick 123 ") * 20)  # 20 more ticks

    completed = wait_terminal(b, finite, TAKEOVER_WAIT)
    assert completed["status"] == "completed", completed
    finite_log = replay(b, finite)
    assert_log_ends(finite_log, "response.completed", "completed")
    assert deltas(finite_log) == ticks_text(150)  # retried writes: nothing twice, nothing lost
    with b.client() as on_b:
        assert on_b.responses.cancel(endless).status == "cancelled"
    log = replay(a, endless)
    assert_log_ends(log, "response.incomplete", "cancelled")
    assert tail.join() == log
    assert ticks_text(100_000).startswith(deltas(log))


@pytest.mark.unmigrated
def test_replicas_started_together_on_a_fresh_database_migrate_it_once(
    replica: Replicas, postgres_database: TestDatabase
) -> None:
    with ThreadPoolExecutor(3) as pool:
        servers = list(pool.map(lambda _: replica(), range(3)))
    versions = _schema_versions(postgres_database.url)
    assert versions == list(range(1, len(versions) + 1))
    ids = [create(server, "ticks", "n=3 delay=0") for server in servers]
    for rid in ids:
        assert wait_terminal(servers[0], rid, TAKEOVER_WAIT)["status"] == "completed"


def _connections(url: str) -> int:
    """Connections to this test's database, besides the one asking."""

    async def count() -> int:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            value = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return int(value)
        finally:
            await conn.close()

    return asyncio.run(count())


def test_a_replica_uses_no_more_connections_than_its_pool_size_its_listener_and_a2a(
    replica: Replicas, postgres_database: TestDatabase
) -> None:
    server = replica("--db-pool-size", "3")
    ids = [create(server, "ticks", "n=100 delay=0.02") for _ in range(20)]
    tails = [Tail(server, rid) for rid in ids]
    most = _connections(postgres_database.url)
    while not all(status_of(server, rid) in TERMINAL_STATUSES for rid in ids):
        most = max(most, _connections(postgres_database.url))
        time.sleep(0.05)
    # The pool, the connection that listens for notifications, and A2A's task index.
    assert 1 < most <= 3 + 1 + A2A_POOL_SIZE
    for rid, tail in zip(ids, tails, strict=True):
        log = tail.join()
        assert log == replay(server, rid)
        assert_log_ends(log, "response.completed", "completed")
        assert deltas(log) == ticks_text(100)


def _schema_versions(url: str) -> list[int]:
    async def read() -> list[int]:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return [r[0] for r in await conn.fetch("SELECT version FROM schema_version ORDER BY 1")]
        finally:
            await conn.close()

    return asyncio.run(read())


@pytest.mark.unmigrated
def test_db_upgrade_creates_the_schema_once_and_a_replica_then_serves(
    postgres_database: TestDatabase, tmp_path: Path
) -> None:
    def upgrade(url: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "outlast", "db", "upgrade", "--db", url],
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert postgres_database.count_responses() is None
    first = upgrade(postgres_database.url)
    assert first.returncode == 0, first.stderr
    assert "up to date" in first.stdout
    assert postgres_database.count_responses() == 0
    versions = _schema_versions(postgres_database.url)
    assert versions and versions == sorted(set(versions))

    again = upgrade(postgres_database.url)
    assert again.returncode == 0, again.stderr
    assert _schema_versions(postgres_database.url) == versions

    unreachable = upgrade("postgresql://postgres@127.0.0.1:1/nothing")
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith("outlast: ") and "Traceback" not in unreachable.stderr

    server = ServerProcess(postgres_database.url, agent="replica_agents:router", log_dir=tmp_path)
    server.start(timeout=60.0)
    try:
        rid = create(server, "ticks", "n=3 delay=0")
        assert wait_terminal(server, rid, TAKEOVER_WAIT)["status"] == "completed"
    finally:
        server.stop()
    assert _schema_versions(postgres_database.url) == versions


# -- retention -------------------------------------------------------------------------------------


def test_two_replicas_purge_expired_responses_and_keep_running_ones(
    replica: Replicas, postgres_database: TestDatabase, tmp_path: Path
) -> None:
    a = replica("--retention", "1", "--retention-interval", "0.5")
    b = replica("--retention", "1", "--retention-interval", "0.5")
    finished = [create(server, "ticks", "n=3 delay=0") for server in (a, b, a, b)]

    def completed_or_purged(rid: str) -> bool:
        # A second after it completes a response may be gone already (a busy machine can poll
        # that late): purged is a completed response too, since a running one is never purged.
        r = httpx.get(f"{a.base_url}/responses/{rid}", timeout=30.0)
        return r.status_code == 404 or r.json()["status"] == "completed"

    for rid in finished:
        wait_until(functools.partial(completed_or_purged, rid), f"{rid} completed", TAKEOVER_WAIT)
    held = tmp_path / "held"
    running = create(b, "hold", f"marker={held}")
    wait_for_line(held, f"started {pid(b)}")

    # Expired rows are deleted (not only hidden), events included; the running one stays.
    wait_until(lambda: postgres_database.count_responses() == 1, "expired rows purged", 30.0)
    for rid in finished:
        for server in (a, b):
            r = httpx.get(f"{server.base_url}/responses/{rid}", timeout=30.0)
            assert r.status_code == 404, r.text
    assert status_of(a, running) == "in_progress"
    with a.client() as on_a:
        assert on_a.responses.cancel(running).status == "cancelled"
