"""A real ``outlast serve`` under clients that take without giving (issue 12).

- **Paused readers.** 200 clients stream one response of 30,000 events and stop reading (their
  sockets' receive buffers full). Each held a page of 1,000 events and its copies on the way to
  the socket: 187 MB of server memory for 200 (955 KB each). Now a reader behind holds about
  32 KiB of events: the server's resident memory grows by well under 100 MB (34 MB measured), and
  ``/healthz`` still answers.
- **Slow-loris.** Connections that send part of a request's headers and stall, or nothing at
  all, are closed by the server once ``--header-timeout`` has passed; so is a kept-alive
  connection that starts a second request and stalls. A complete request is served as ever,
  and a WebSocket (its headers complete, its connection upgraded) is never cut by the deadline.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from websockets.sync.client import connect as websocket

from databases import only_on
from serverproc import ServerProcess

pytestmark = only_on("sqlite")

READERS = 200
EVENTS = 30_000
RSS_GROWTH_BOUND_MB = 100


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def streams_open(server: ServerProcess) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=120).text
    found = re.search(r"^outlast_streams_open (\S+)", text, re.MULTILINE)
    assert found, text[:500]
    return float(found.group(1))


def paused_reader(server: ServerProcess, response_id: str) -> socket.socket:
    """A client that asks for the stream and never reads it (a small receive buffer, so the
    server's writes back up at once)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    request = f"GET /v1/responses/{response_id}?stream=true HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    sock.sendall(request.encode())
    return sock


@pytest.fixture
def paused_server(make_server: Callable[..., ServerProcess]) -> ServerProcess:
    return make_server(
        agent="scripted_agents:router", args=["--max-streams-per-response", str(READERS)]
    ).start()


def test_200_paused_readers_of_one_response_stay_under_the_memory_bound(
    paused_server: ServerProcess,
) -> None:
    server = paused_server
    assert server.proc is not None
    with httpx.Client(base_url=server.base_url, timeout=120) as http:
        rid = http.post(
            "/responses", json={"model": "count", "input": f"n={EVENTS}", "background": True}
        ).json()["id"]
        deadline = time.monotonic() + 300
        while http.get(f"/responses/{rid}").json()["status"] != "completed":
            assert time.monotonic() < deadline, "the run did not finish"
            time.sleep(0.2)
        # One whole replay first, so that what every stream needs once is already allocated.
        with http.stream("GET", f"/responses/{rid}", params={"stream": "true"}) as replay:
            replayed = sum(len(chunk) for chunk in replay.iter_bytes())
        assert replayed > 5_000_000
    before = rss_mb(server.proc.pid)
    readers = [paused_reader(server, rid) for _ in range(READERS)]
    try:
        deadline = time.monotonic() + 120
        while streams_open(server) < READERS:
            assert time.monotonic() < deadline, "the streams did not all open"
            time.sleep(0.2)
        # Every reader has written what its socket takes and holds its page; sample a while.
        peak = before
        for _ in range(10):
            time.sleep(0.5)
            peak = max(peak, rss_mb(server.proc.pid))
        health = httpx.get(f"{server.url}/healthz", timeout=60)
        assert health.status_code == 200
        assert streams_open(server) == READERS
    finally:
        for sock in readers:
            sock.close()
    growth = peak - before
    assert growth < RSS_GROWTH_BOUND_MB, (
        f"{READERS} paused readers grew the server by {growth:.0f} MB "
        f"({before:.0f} MB before, {peak:.0f} MB at the peak)"
    )


# -- slow-loris -------------------------------------------------------------------------------


@pytest.fixture
def strict_server(make_server: Callable[..., ServerProcess]) -> ServerProcess:
    return make_server(agent="scripted_agents:router", args=["--header-timeout", "1"]).start()


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def connect(server: ServerProcess, opened: list[socket.socket]) -> socket.socket:
    # The timeout is only a guard against a server that never closes: the test then fails.
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    opened.append(sock)
    return sock


def closed_by_server(sock: socket.socket) -> bytes:
    """What the server sent before closing the connection (raises if it never closes)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_slow_loris_connections_are_closed_once_the_header_timeout_passes(
    strict_server: ServerProcess, sockets: list[socket.socket]
) -> None:
    partial = [connect(strict_server, sockets) for _ in range(50)]
    for sock in partial:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    silent = [connect(strict_server, sockets) for _ in range(10)]
    for sock in partial + silent:
        assert closed_by_server(sock) == b""
    # The server is as available as before.
    assert httpx.get(f"{strict_server.url}/healthz", timeout=60).status_code == 200


def test_a_kept_alive_connection_that_stalls_in_its_next_request_is_closed(
    strict_server: ServerProcess, sockets: list[socket.socket]
) -> None:
    sock = connect(strict_server, sockets)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    first = b""
    while b'"status"' not in first:
        first += sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 200")
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 12")
    assert b"HTTP/1.1" not in closed_by_server(sock)


def test_a_request_that_completes_its_headers_in_time_is_served(
    strict_server: ServerProcess, sockets: list[socket.socket]
) -> None:
    sock = connect(strict_server, sockets)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    reply = closed_by_server(sock)
    assert reply.startswith(b"HTTP/1.1 200"), reply


def test_headers_past_the_size_bound_get_a_400_and_the_connection_closed(
    strict_server: ServerProcess, sockets: list[socket.socket]
) -> None:
    sock = connect(strict_server, sockets)
    sock.sendall(
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
    )
    assert closed_by_server(sock).startswith(b"HTTP/1.1 400")
    # Within the bound (16 KiB by default), the same request is served.
    reply = httpx.get(f"{strict_server.url}/healthz", headers={"X-Big": "a" * 8_000}, timeout=60)
    assert reply.status_code == 200


def test_a_websocket_is_not_closed_by_the_header_timeout(strict_server: ServerProcess) -> None:
    with websocket(f"ws://127.0.0.1:{strict_server.port}/v1/responses", open_timeout=60) as ws:
        # Past the header deadline (1 s): the upgraded connection is the WebSocket's now.
        time.sleep(2.5)
        assert ws.ping().wait(timeout=60)
