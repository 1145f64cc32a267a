"""A loopback TCP proxy that breaks connections on purpose, for resume tests.

It sits between a client and a server (``127.0.0.1`` only) and, for each new connection, asks a
plan what to do to it, given the connection's number and its first request line:

- ``None``: pass everything through;
- :class:`Cut`: pass ``after`` bytes of the server's answer (mid-frame, mid-header: wherever that
  falls), then close the connection, with a FIN or a TCP reset;
- :class:`Stall`: pass ``after`` bytes, then forward nothing more while keeping the connection
  open (the client sees a silent server: its read timeout must fire);
- :class:`BadGateway`: answer ``502`` without contacting the server, as a load balancer does when
  its backend is away.

When the server is down, a connection is accepted and closed at once. :meth:`cut_all` breaks
every open connection now (what a server restart does to its clients); :meth:`sleep_all`
silences every open connection now, as a laptop's go when it sleeps (a browser reusing its
keep-alive connections sends no new first request line a plan could act on).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType


@dataclass(frozen=True)
class Cut:
    after: int
    reset: bool = False


@dataclass(frozen=True)
class Stall:
    after: int


@dataclass(frozen=True)
class BadGateway:
    pass


Fault = Cut | Stall | BadGateway
Plan = Callable[[int, str], Fault | None]
"""``plan(connection_number, request_line)``: what to do to that connection (None: nothing)."""

_BAD_GATEWAY_BODY = (
    b'{"error":{"message":"bad gateway","type":"server_error","param":null,"code":null}}'
)
BAD_GATEWAY = (
    b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: application/json\r\n"
    + f"content-length: {len(_BAD_GATEWAY_BODY)}\r\nconnection: close\r\n\r\n".encode()
    + _BAD_GATEWAY_BODY
)


class FaultProxy:
    """Forwards ``127.0.0.1:<port>`` to ``127.0.0.1:<upstream_port>``, breaking what ``plan`` says."""

    def __init__(self, upstream_port: int, plan: Plan | None = None) -> None:
        self.upstream_port = upstream_port
        self.plan: Plan = plan or (lambda number, line: None)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._silenced: set[socket.socket] = set()
        self._closed = False
        self.connections = 0
        """Connections accepted so far."""
        self.faults: list[tuple[str, Fault]] = []
        """Each fault applied: the request line it hit, and the fault."""
        self._thread = threading.Thread(target=self._accept, name="faultproxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        self.cut_all()
        self._thread.join(5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def cut_all(self) -> None:
        """Break every open connection now."""
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            _close(sock)

    def sleep_all(self) -> None:
        """From now on, nothing the server sends on the connections open now reaches the client;
        they stay open (even once the server closes its end) until the client sends on one,
        which gets a TCP reset (the far end forgot it meanwhile). New connections work."""
        with self._lock:
            self._silenced |= self._open

    # -- plumbing ------------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            number = self.connections
            self.connections += 1
            threading.Thread(
                target=self._serve, args=(client, number), name=f"faultproxy-{number}", daemon=True
            ).start()

    def _track(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._open.update(sockets)

    def _serve(self, client: socket.socket, number: int) -> None:
        self._track(client)
        upstream: socket.socket | None = None
        try:
            head = b""
            while b"\r\n" not in head:
                chunk = client.recv(65536)
                if not chunk:
                    return
                head += chunk
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            fault = self.plan(number, line)
            if fault is not None:
                self.faults.append((line, fault))
            if isinstance(fault, BadGateway):
                client.sendall(BAD_GATEWAY)
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                return  # the server is down: the client sees its connection closed
            upstream.settimeout(None)
            self._track(upstream)
            upstream.sendall(head)
            up = threading.Thread(
                target=self._up, args=(client, upstream), name=f"faultproxy-{number}-up",
                daemon=True,
            )  # fmt: skip
            up.start()
            budget = None if fault is None else fault.after
            while True:
                data = upstream.recv(65536)
                if client in self._silenced:
                    if not data:
                        up.join()  # the client's end stays open until it sends, or closes
                        return
                    continue  # dropped: the client is asleep
                if not data:
                    return
                if budget is not None and len(data) >= budget:
                    client.sendall(data[:budget])
                    if isinstance(fault, Stall):
                        # Hold both ends open and silent until the client gives up on us.
                        while client.recv(65536):
                            pass
                        return
                    if isinstance(fault, Cut) and fault.reset:
                        _reset(client)
                    return
                client.sendall(data)
                if budget is not None:
                    budget -= len(data)
        except OSError:
            return
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    _close(sock)
                    with self._lock:
                        self._open.discard(sock)
                        self._silenced.discard(sock)

    def _up(self, client: socket.socket, upstream: socket.socket) -> None:
        """Client to server, untouched, until either side closes; on a silenced connection the
        client's first bytes get a reset instead."""
        try:
            while data := client.recv(65536):
                if client in self._silenced:
                    _reset(client)
                    return
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            _close(upstream)


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset instead of a FIN (SO_LINGER 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # Wake another thread's recv first: a socket is only released (and the reset sent) once no
    # thread is blocked on it.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)
    sock.close()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
