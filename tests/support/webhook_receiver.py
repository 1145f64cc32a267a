"""A loopback webhook receiver: records every delivery, answers 2xx or fails on purpose."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from serverproc import free_port


@dataclass
class Delivery:
    body: bytes
    headers: dict[str, str]
    status: int
    """What the receiver answered."""


class Receiver:
    """``fail_first``: answer 500 to that many requests before accepting; ``failing``: answer
    503 to every request until set to False."""

    def __init__(self, fail_first: int = 0, port: int | None = None) -> None:
        self.fail_first = fail_first
        self.failing = False
        self.deliveries: list[Delivery] = []
        self.lock = threading.Lock()
        self.port = port or free_port()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    if receiver.failing:
                        status = 503
                    elif receiver.fail_first > 0:
                        receiver.fail_first -= 1
                        status = 500
                    else:
                        status = 200
                    receiver.deliveries.append(
                        Delivery(body, {k.lower(): v for k, v in self.headers.items()}, status)
                    )
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def accepted(self) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if d.status == 200]

    def all(self) -> list[Delivery]:
        with self.lock:
            return list(self.deliveries)

    def wait_for(self, predicate: object, timeout: float = 30.0) -> list[Delivery]:
        """Every delivery, once ``predicate(deliveries)`` holds."""
        assert callable(predicate)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            deliveries = self.all()
            if predicate(deliveries):
                return deliveries
            time.sleep(0.05)
        raise AssertionError(f"webhook deliveries never matched; got {self.all()}")
