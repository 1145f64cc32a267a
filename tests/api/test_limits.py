"""What one request, one conversation and one key's streams may ask of the server (issue 12).

- An ``input`` of more items than ``--max-input-items`` (default 10,000) is a 400 on ``input``
  (``array_above_max_length``), refused before any item is looked at.
- A conversation, its input plus every earlier turn of its ``previous_response_id`` chain as
  stored, larger than ``--max-conversation-size`` is a 400 (``context_length_exceeded``) on
  ``previous_response_id`` (or on ``input`` when the input alone is too large); nothing is run.
- ``GET …/input_items`` pages a long input from the store, in both orders, from a cursor.
- Open event streams are bounded per response and per key: beyond either, a 429 in OpenAI's
  error shape with ``Retry-After``; a closed stream gives its slot back; a streaming create
  refused that way creates nothing.
- A request body that does not arrive within ``--body-timeout`` is a 408.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from inprocess import BACKENDS, TEST_KEY, InProcessServer
from responses_support import start_blocked, wait_until_done


def items(n: int, text: str = "x") -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"{text} {i}"} for i in range(n)]


def create(server: InProcessServer, **body: Any) -> httpx.Response:
    payload = {"model": "echo", "background": True, **body}
    return httpx.post(f"{server.base_url}/responses", json=payload, timeout=60)


def error_of(reply: httpx.Response) -> dict[str, Any]:
    body = reply.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    error: dict[str, Any] = body["error"]
    return error


# -- input items --------------------------------------------------------------------------------


def test_an_input_of_more_items_than_the_limit_is_refused_on_input(
    make_server: Callable[..., InProcessServer],
) -> None:
    server = make_server("--max-input-items", "3")
    assert create(server, input=items(3)).status_code == 200
    reply = create(server, input=items(4))
    assert reply.status_code == 400
    error = error_of(reply)
    assert error["param"] == "input"
    assert error["code"] == "array_above_max_length"
    assert error["type"] == "invalid_request_error"
    assert "maximum length 3" in error["message"] and "length 4" in error["message"]


def test_by_default_an_input_may_hold_10000_items_and_no_more(server: InProcessServer) -> None:
    refused = create(server, input=items(10_001))
    assert refused.status_code == 400
    assert error_of(refused)["code"] == "array_above_max_length"
    accepted = create(server, input=items(10_000))
    assert accepted.status_code == 200, accepted.text


# -- the conversation -------------------------------------------------------------------------


def test_a_chain_past_the_conversation_limit_is_refused_on_previous_response_id(
    make_server: Callable[..., InProcessServer],
) -> None:
    server = make_server("--max-conversation-size", "20000")
    with server.client() as client:
        text = "word " * 600  # 3,000 bytes of input, and as many of output (echo)
        previous: str | None = None
        accepted = 0
        for _ in range(10):
            reply = create(server, input=text, previous_response_id=previous)
            if reply.status_code != 200:
                break
            accepted += 1
            previous = reply.json()["id"]
            assert wait_until_done(client, previous).status == "completed"
        assert accepted >= 1, reply.text
        assert reply.status_code == 400, f"after {accepted} turns: {reply.status_code} {reply.text}"
        error = error_of(reply)
        assert error["param"] == "previous_response_id"
        assert error["code"] == "context_length_exceeded"
        assert "20000 bytes" in error["message"]
        # The same input on its own is a conversation that fits.
        assert create(server, input=text).status_code == 200


def test_an_input_larger_than_the_conversation_limit_is_refused_on_input(
    make_server: Callable[..., InProcessServer],
) -> None:
    server = make_server("--max-conversation-size", "2000")
    reply = create(server, input="x" * 3000)
    assert reply.status_code == 400
    error = error_of(reply)
    assert error["param"] == "input"
    assert error["code"] == "context_length_exceeded"


# -- input_items ------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_input_items_pages_a_long_input_in_both_orders_from_a_cursor(
    server: InProcessServer,
) -> None:
    auth = {"authorization": f"Bearer {TEST_KEY}"}
    with httpx.Client(base_url=server.base_url, headers=auth, timeout=60) as http:
        body = {"model": "echo", "background": True, "input": items(2000)}
        response = http.post("/responses", json=body).json()
        url = f"/responses/{response['id']}/input_items"
        newest = http.get(url, params={"limit": 1}).json()
        assert [item["content"][0]["text"] for item in newest["data"]] == ["x 1999"]
        assert newest["has_more"] is True
        assert newest["first_id"] == newest["last_id"] == newest["data"][0]["id"]
        oldest = http.get(url, params={"limit": 2, "order": "asc"}).json()
        assert [item["content"][0]["text"] for item in oldest["data"]] == ["x 0", "x 1"]
        params = {"limit": 100, "order": "asc", "after": oldest["last_id"]}
        after = http.get(url, params=params).json()
        assert after["data"][0]["content"][0]["text"] == "x 2"
        assert len(after["data"]) == 100 and after["has_more"] is True
        last = http.get(url, params={"order": "desc", "after": newest["last_id"]}).json()
        assert last["data"][0]["content"][0]["text"] == "x 1998"
        unknown = http.get(url, params={"after": "msg_nope"})
        assert unknown.status_code == 400 and error_of(unknown)["param"] == "after"


# -- open streams -----------------------------------------------------------------------------


@contextlib.contextmanager
def open_stream(server: InProcessServer, response_id: str) -> Iterator[httpx.Response]:
    """A stream of the response, held open (its headers received) until the block ends."""
    with (
        httpx.Client(timeout=60) as http,
        http.stream(
            "GET", f"{server.base_url}/responses/{response_id}", params={"stream": "true"}
        ) as reply,
    ):
        yield reply


def assert_too_many_streams(reply: httpx.Response, about: str) -> None:
    assert reply.status_code == 429, reply.status_code
    assert int(reply.headers["retry-after"]) >= 1
    reply.read()
    error = error_of(reply)
    assert error["code"] == "rate_limit_exceeded"
    assert about in error["message"]


def test_open_streams_are_bounded_per_response_and_per_key_with_a_429(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server = make_server("--max-streams-per-response", "2", "--max-streams-per-key", "3")
    with server.client() as client:
        a = start_blocked(client, tmp_path / "a").id
        b = start_blocked(client, tmp_path / "b").id
    with contextlib.ExitStack() as held:
        first = held.enter_context(open_stream(server, a))
        assert first.status_code == 200
        assert held.enter_context(open_stream(server, a)).status_code == 200
        with open_stream(server, a) as third:
            assert_too_many_streams(third, f"response '{a}'")
        assert held.enter_context(open_stream(server, b)).status_code == 200
        with open_stream(server, b) as fourth:
            assert_too_many_streams(fourth, "this API key")
        # A streaming create at the key's limit creates nothing.
        listed = httpx.get(f"{server.base_url}/responses", params={"limit": 100}).json()
        with (
            httpx.Client(timeout=60) as http,
            http.stream(
                "POST",
                f"{server.base_url}/responses",
                json={"model": "echo", "input": "hi", "stream": True, "background": True},
            ) as refused,
        ):
            assert_too_many_streams(refused, "this API key")
        again = httpx.get(f"{server.base_url}/responses", params={"limit": 100}).json()
        assert [r["id"] for r in again["data"]] == [r["id"] for r in listed["data"]]
        # A closed stream gives its slot back.
        first.close()
        held.close()
    with open_stream(server, b) as reopened:
        assert reopened.status_code == 200


# -- the body's deadline ----------------------------------------------------------------------


def test_a_body_that_stalls_half_way_gets_a_408(
    make_server: Callable[..., InProcessServer],
) -> None:
    server = make_server("--body-timeout", "1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(
            b"POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            b'{"model": '
        )
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), reply
    assert b'"code":"request_timeout"' in body
