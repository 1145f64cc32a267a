"""Every answer carries an ``x-request-id``; ``--cors-origin`` lets pages of other origins call.

The id is the request's own ``x-request-id`` when it sent a usable one (so a proxy's or a
client's id finds the same request in outlast's log), else a new ``req_…``: on every answer,
errors included. CORS is off unless origins are named; a preflight is answered before the key is
checked, since a browser sends none with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from inprocess import InProcessServer

GENERATED = re.compile(r"req_[0-9a-f]{24}")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/healthz"), ("GET", "/v1/responses/resp_nope"), ("POST", "/v1/responses"),
     ("GET", "/openapi.json"), ("DELETE", "/healthz")],
)  # fmt: skip
def test_every_answer_has_a_request_id_of_its_own(
    server: InProcessServer, method: str, path: str
) -> None:
    first = httpx.request(method, server.url + path, json={})
    second = httpx.request(method, server.url + path, json={})
    assert GENERATED.fullmatch(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


def test_the_request_id_a_client_sends_is_the_one_answered(server: InProcessServer) -> None:
    answer = httpx.get(server.url + "/v1/responses/resp_nope", headers={"x-request-id": "lb-7f3a"})
    assert answer.status_code == 404
    assert answer.headers.get_list("x-request-id") == ["lb-7f3a"]


@pytest.mark.parametrize("given", ["", "has space", "x" * 201, "caf\u00e9"])
def test_an_unusable_request_id_is_replaced_by_a_new_one(
    server: InProcessServer, given: str
) -> None:
    answer = httpx.get(server.url + "/healthz", headers={"x-request-id": given.encode()})
    assert GENERATED.fullmatch(answer.headers["x-request-id"])


def test_without_cors_origins_no_cors_headers_are_sent(server: InProcessServer) -> None:
    answer = httpx.get(server.url + "/healthz", headers={"origin": "http://page.example"})
    assert "access-control-allow-origin" not in answer.headers


def test_a_named_origin_gets_its_preflight_answered_without_a_key(
    make_server: Callable[..., InProcessServer],
) -> None:
    server = make_server("--cors-origin", "http://localhost:5173", "--api-key", "sesame")
    preflight = httpx.options(
        server.url + "/v1/responses",
        headers={
            "origin": "http://localhost:5173",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    call = httpx.get(
        server.url + "/v1/responses",
        headers={"origin": "http://localhost:5173", "authorization": "Bearer sesame"},
    )
    assert call.status_code == 200
    assert call.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "x-request-id" in call.headers["access-control-expose-headers"].lower()
    # The key is still needed for the call itself, and another origin is not let in.
    assert httpx.get(server.url + "/v1/responses").status_code == 401
    other = httpx.get(server.url + "/healthz", headers={"origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers
