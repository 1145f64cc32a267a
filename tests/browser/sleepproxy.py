"""A loopback TCP proxy whose open connections can be made to go silent, as a laptop's do when
it sleeps: they stay open and nothing more arrives on them, and the first bytes the client sends
on one afterwards get a TCP reset (the far end forgot it meanwhile); connections opened
afterwards work.

(``faultproxy`` decides a connection's fate by its first request line, which a browser reusing
its keep-alive connections does not repeat; this one acts on whatever is open at the time.)
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType


class SleepProxy:
    """Forwards ``127.0.0.1:<port>`` to ``127.0.0.1:<upstream_port>``; :meth:`sleep` silences
    every connection open now, for good."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._silenced: set[socket.socket] = set()
        self._closed = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> SleepProxy:
        threading.Thread(target=self._accept, name="sleepproxy", daemon=True).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.close()

    def sleep(self) -> None:
        """From now on, nothing the server sends on the connections open now reaches the client;
        they stay open until the client sends on one, which resets it."""
        with self._lock:
            self._silenced |= self._open

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.add(client)
            threading.Thread(target=self._up, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client), daemon=True).start()

    def _up(self, client: socket.socket, upstream: socket.socket) -> None:
        """Client to server; on a silenced connection, a reset instead."""
        try:
            while data := client.recv(65536):
                if client in self._silenced:
                    # SO_LINGER 0: close() sends a TCP reset instead of a FIN.
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    break
                upstream.sendall(data)
        except OSError:
            pass
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.close()

    def _down(self, upstream: socket.socket, client: socket.socket) -> None:
        """Server to client, until the connection is silenced: then read and dropped, and the
        client's end kept open even once the server closes its own."""
        try:
            while data := upstream.recv(65536):
                if client not in self._silenced:
                    client.sendall(data)
        except OSError:
            pass
        if client not in self._silenced:
            with contextlib.suppress(OSError):
                client.close()
