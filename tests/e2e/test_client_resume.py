"""The client's streams survive faults: every event exactly once, in order, whatever breaks.

A loopback proxy (tests/support/faultproxy.py) sits between :class:`outlast.client.OutlastClient` and a
real ``outlast serve``, and breaks the client's connections at random points: a FIN or a TCP
reset in the middle of an SSE frame, a connection that goes silent (the client's read timeout
must fire), a ``502`` from the "load balancer". Once, the server itself is killed and restarted
on the same database and port. Each time the events the client yields are exactly the server's
log (replayed afterwards, directly): complete, in order, no duplicates, and the text they carry
is what the agent wrote.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from openai.types.responses import ResponseStreamEvent

from databases import TestDatabase, fresh_database
from faultproxy import BadGateway, Cut, Fault, FaultProxy, Plan, Stall
from helpers import wait_until
from outlast.client import AsyncOutlastClient, Backoff, OutlastClient, StartInterrupted
from serverproc import ServerProcess

# The client holds no state that depends on the backend: SQLite is enough here.
pytestmark = pytest.mark.timeout(180)

FAST = Backoff(initial=0.05, maximum=0.5)
# The proxy's "silent connection" must be noticed quickly; outlast's own keep-alives come every
# 15 s, so a live stream never stays silent this long by itself.
READ_TIMEOUT = 1.0
# After this many connections the proxy lets everything through, so every test ends.
MAX_FAULTY_CONNECTIONS = 40


@pytest.fixture
def database(tmp_path: Path) -> Iterator[TestDatabase]:
    with fresh_database("sqlite", tmp_path) as db:
        yield db


@pytest.fixture(scope="module")
def module_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDatabase]:
    """The module's shared server is on SQLite too; its tests look only at their own runs."""
    with fresh_database("sqlite", tmp_path_factory.mktemp("sqlite")) as db:
        yield db


def count_text(n: int) -> str:
    return "".join(f"{i} " for i in range(n))


def deltas(events: list[ResponseStreamEvent]) -> str:
    return "".join(e.delta for e in events if e.type == "response.output_text.delta")


def as_dicts(events: list[ResponseStreamEvent]) -> list[dict[str, Any]]:
    return [e.to_dict() for e in events]


def server_log(server: ServerProcess, response_id: str) -> list[ResponseStreamEvent]:
    """The response's whole log, read straight from the server (no proxy, no client library)."""
    with server.client() as direct:
        return list(direct.responses.retrieve(response_id, stream=True))


def completed(server: ServerProcess, response_id: str | None) -> Callable[[], bool]:
    def check() -> bool:
        with server.client() as direct:
            return direct.responses.retrieve(str(response_id)).status == "completed"

    return check


def random_faults(seed: int) -> Plan:
    """Break most connections somewhere random; a create's stream only after its first event."""
    rng = random.Random(seed)

    def plan(number: int, request_line: str) -> Fault | None:
        if number >= MAX_FAULTY_CONNECTIONS:
            return None
        if request_line.startswith("POST"):
            # Past the headers and ``response.created`` (about 800 bytes): the id is known.
            return Cut(rng.randint(1500, 12_000), reset=rng.random() < 0.5)
        kind = rng.random()
        if kind < 0.6:
            return Cut(rng.randint(0, 12_000), reset=rng.random() < 0.5)
        if kind < 0.75:
            return Stall(rng.randint(0, 8_000))
        if kind < 0.9:
            return BadGateway()
        return None

    return plan


def client_through(proxy: FaultProxy) -> OutlastClient:
    return OutlastClient(
        base_url=proxy.base_url,
        api_key="test-key",
        stream_read_timeout=READ_TIMEOUT,
        reconnect=FAST,
        give_up_after=60,
    )


def assert_exactly_the_log(
    server: ServerProcess, events: list[ResponseStreamEvent]
) -> list[ResponseStreamEvent]:
    assert [e.sequence_number for e in events] == list(range(len(events)))
    log = server_log(server, events[0].response.id)  # type: ignore[union-attr]
    assert as_dicts(events) == as_dicts(log)
    return log


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_stream_cut_at_random_points_yields_every_event_once_in_order(
    shared_server: ServerProcess, seed: int
) -> None:
    n = 400
    with (
        FaultProxy(shared_server.port, random_faults(seed)) as proxy,
        client_through(proxy) as client,
    ):
        stream = client.stream(model="count", input=f"n={n} delay=0.002")
        events = list(stream)
    assert len(proxy.faults) >= 5, "the proxy broke too little to prove anything"
    assert stream.reconnects >= 1
    assert_exactly_the_log(shared_server, events)
    assert events[-1].type == "response.completed"
    assert deltas(events) == count_text(n)
    assert stream.token is not None
    assert stream.token.sequence_number == events[-1].sequence_number


async def test_the_async_client_resumes_through_the_same_faults(
    shared_server: ServerProcess,
) -> None:
    n = 300
    with FaultProxy(shared_server.port, random_faults(7)) as proxy:
        async with AsyncOutlastClient(
            base_url=proxy.base_url,
            api_key="test-key",
            stream_read_timeout=READ_TIMEOUT,
            reconnect=FAST,
            give_up_after=60,
        ) as client:
            stream = client.stream(model="count", input=f"n={n} delay=0.002")
            events = [event async for event in stream]
    assert stream.reconnects >= 1
    assert_exactly_the_log(shared_server, events)
    assert deltas(events) == count_text(n)


def test_each_kind_of_fault_is_survived_on_its_own(shared_server: ServerProcess) -> None:
    """A FIN, a reset, a silent connection, a 502 and a refused answer, one after the other."""
    faults: list[Fault] = [Cut(2000), Cut(300, reset=True), Stall(500), BadGateway(), Cut(0)]
    queue = list(faults)

    def plan(number: int, request_line: str) -> Fault | None:
        return queue.pop(0) if queue else None

    with FaultProxy(shared_server.port, plan) as proxy, client_through(proxy) as client:
        stream = client.stream(model="count", input="n=100 delay=0.02")
        events = list(stream)
    assert [fault for _, fault in proxy.faults] == faults
    assert stream.reconnects >= len(faults)
    assert_exactly_the_log(shared_server, events)
    assert deltas(events) == count_text(100)


def test_a_create_cut_before_its_first_event_is_start_interrupted(
    shared_server: ServerProcess,
) -> None:
    """Without the response's id nothing can be resumed, and re-sending could run it twice:
    the client says so instead of guessing."""
    with (
        FaultProxy(
            shared_server.port, lambda number, line: Cut(100) if number == 0 else None
        ) as proxy,
        client_through(proxy) as client,
        pytest.raises(StartInterrupted),
    ):
        list(client.stream(model="count", input="n=3"))


def test_a_stream_goes_on_after_the_server_is_killed_and_restarted(
    make_server: Any,
) -> None:
    """The run finished before the kill; the client, still reading, gets the rest afterwards.

    The proxy holds back everything after the first 20 kB of the stream (as a congested network
    would), so what the client has not read yet is lost with the connection and must come from
    the restarted server.
    """
    server = make_server(agent="scripted_agents:router", args=["--drain-timeout", "1"]).start()
    n = 2000
    restart = threading.Timer(0.5, server.start)
    with (
        FaultProxy(
            server.port, lambda number, line: Stall(20_000) if number == 0 else None
        ) as proxy,
        client_through(proxy) as client,
    ):
        stream = client.stream(model="count", input=f"n={n}")
        events = []
        for event in stream:
            events.append(event)
            if len(events) == 20:
                wait_until(completed(server, stream.response_id), "the run completed")
                server.kill()
                proxy.cut_all()
                restart.start()  # the client retries against a dead port meanwhile
    restart.join()
    assert stream.reconnects >= 1
    assert_exactly_the_log(server, events)
    assert events[-1].type == "response.completed"
    assert deltas(events) == count_text(n)


def test_a_run_killed_with_its_server_ends_failed_and_the_client_sees_exactly_that(
    make_server: Any,
) -> None:
    """Killed mid-run: after the restart the run ends failed ("the server stopped"), and the
    client's stream is the whole log, ending with ``response.failed``; the text it carried is
    exactly what the agent had written (the response's output)."""
    server = make_server(agent="scripted_agents:router", args=["--drain-timeout", "1"]).start()
    restart = threading.Timer(1.0, server.start)
    with FaultProxy(server.port) as proxy, client_through(proxy) as client:
        stream = client.stream(model="count", input="n=500 delay=0.02")
        events = []
        for event in stream:
            events.append(event)
            if len(events) == 30:
                server.kill()
                restart.start()
    restart.join()
    assert stream.reconnects >= 1
    log = assert_exactly_the_log(server, events)
    assert events[-1].type == "response.failed"
    final = log[-1].response  # type: ignore[union-attr]
    assert final.error is not None and "server stopped" in final.error.message
    text = deltas(events)
    assert text == final.output_text
    assert count_text(500).startswith(text) and len(text) > 0
