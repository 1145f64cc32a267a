"""Helpers shared by the end-to-end tests: SSE parsing, replays, and waiting for things."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
from openai import OpenAI

from serverproc import ServerProcess

Event = dict[str, Any]

TERMINAL_TYPES = {"response.completed", "response.failed", "response.incomplete"}
TERMINAL_STATUSES = {"completed", "failed", "cancelled", "incomplete"}
STREAM_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
EVENTUALLY = 10.0


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = EVENTUALLY) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def marker_says(marker: Path, text: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return marker.read_text() == text
        except FileNotFoundError:
            return False

    return check


def wait_for_marker(marker: Path, text: str) -> None:
    """Wait until the ``block`` agent's marker file says ``text``; report what it says if not."""
    deadline = time.monotonic() + EVENTUALLY
    while not marker_says(marker, text)():
        now = marker.read_text() if marker.exists() else "(no file)"
        assert time.monotonic() < deadline, f"{marker.name} says {now!r}, not {text!r}"
        time.sleep(0.05)


def iter_sse(lines: Iterable[str]) -> Iterator[Event]:
    """Events (the parsed ``data`` JSON) from SSE lines; ``:`` lines are comments, the
    ``data: [DONE]`` that ends a finished stream is not an event, and a frame cut off before its
    blank line (by a crash) is dropped."""
    data: list[str] = []
    for line in lines:
        if line == "":
            if data and data != ["[DONE]"]:
                yield json.loads("\n".join(data))
            data = []
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").removeprefix(" "))


def replay(server: ServerProcess, response_id: str) -> list[Event]:
    """A response's whole event log, from sequence 0 to the end of the stream."""
    with (
        httpx.Client(base_url=server.url, timeout=STREAM_TIMEOUT) as http,
        http.stream("GET", f"/v1/responses/{response_id}", params={"stream": "true"}) as r,
    ):
        assert r.status_code == 200, r.read()
        return list(iter_sse(r.iter_lines()))


def get_json(server: ServerProcess, response_id: str) -> Event:
    """``GET /v1/responses/{id}`` (without an API key), which must answer 200."""
    r = httpx.get(f"{server.base_url}/responses/{response_id}", timeout=30.0)
    assert r.status_code == 200, r.text
    body: Event = r.json()
    return body


def status_of(server: ServerProcess, response_id: str) -> str:
    status: str = get_json(server, response_id)["status"]
    return status


def wait_terminal(server: ServerProcess, response_id: str, timeout: float = EVENTUALLY) -> Event:
    """The response once it has ended."""
    wait_until(
        lambda: status_of(server, response_id) in TERMINAL_STATUSES,
        f"{response_id} is terminal",
        timeout,
    )
    return get_json(server, response_id)


def wait_ended(client: OpenAI, response_id: str, timeout: float = 30.0) -> str:
    """Poll with the SDK until the response has ended; its status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.responses.retrieve(response_id).status
        if status in TERMINAL_STATUSES:
            return str(status)
        time.sleep(0.05)
    raise AssertionError(f"{response_id} did not end")
