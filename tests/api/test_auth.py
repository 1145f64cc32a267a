"""API keys and ownership (contract: "Errors" 401/404).

With ``--api-key`` (or ``OUTLAST_API_KEYS``) every ``/v1/`` request needs ``Authorization: Bearer
<key>``: none or a wrong one is 401 ``invalid_api_key``; ``/healthz`` stays open. A response
belongs to the key that created it: for any other key it does not exist (404 on get, stream,
cancel, delete and input items; 400 ``previous_response_not_found`` as a chain's parent).

The keys are configured as the command line does it, by flags or by ``OUTLAST_API_KEYS`` (each
test runs on both), on two in-process servers the tests share. That ``outlast serve`` refuses a
non-loopback address without keys unless given ``--insecure`` is a check of the process itself:
tests/e2e/test_bind_address.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from inprocess import InProcessServer, ServerPool
from openai import OpenAI

WAIT = 30.0
KEY_A = "key-a"
KEY_B = "key-b"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(params=["flags", "env"])
def keyed_server(request: pytest.FixtureRequest, servers: ServerPool) -> InProcessServer:
    """A server accepting key-a and key-b, configured by flags or by OUTLAST_API_KEYS."""
    if request.param == "flags":
        return servers.get("sqlite", "--drain-timeout", "1", "--api-key", KEY_A, "--api-key", KEY_B)
    return servers.get(
        "sqlite", "--drain-timeout", "1", env={"OUTLAST_API_KEYS": f"{KEY_A},{KEY_B}"}
    )


@pytest.fixture
def client_a(keyed_server: InProcessServer) -> Iterator[OpenAI]:
    with keyed_server.client(api_key=KEY_A) as c:
        yield c


@pytest.fixture
def client_b(keyed_server: InProcessServer) -> Iterator[OpenAI]:
    with keyed_server.client(api_key=KEY_B) as c:
        yield c


def wait_until_done(client: OpenAI, response_id: str) -> Any:
    deadline = time.monotonic() + WAIT
    while True:
        response = client.responses.retrieve(response_id)
        if response.status not in ("queued", "in_progress"):
            return response
        assert time.monotonic() < deadline, f"{response_id} still {response.status}"
        time.sleep(0.05)


def assert_envelope(reply: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert reply.status_code == status, (reply.status_code, reply.text)
    body = reply.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert error["type"] == "invalid_request_error"
    assert error["code"] == code, error
    return error


ENDPOINTS: list[tuple[str, str, dict[str, str] | None]] = [
    ("POST", "/v1/responses", None),
    ("GET", "/v1/responses/resp_x", None),
    ("GET", "/v1/responses/resp_x", {"stream": "true"}),
    ("POST", "/v1/responses/resp_x/cancel", None),
    ("DELETE", "/v1/responses/resp_x", None),
    ("GET", "/v1/responses/resp_x/input_items", None),
    ("GET", "/v1/unknown-route", None),
]


# --------------------------------------------------------------------------------------------
# 401


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("wrong"),
        {"Authorization": "Bearer"},
        bearer("KEY-A"),
        {"Authorization": KEY_A},
        {"Authorization": f"Basic {KEY_A}"},
        {"X-Api-Key": KEY_A},
        bearer(f"{KEY_A},{KEY_B}"),
    ],
    ids=["none", "wrong", "empty", "case", "no-scheme", "basic", "other-header", "both"],
)
def test_missing_or_wrong_keys_are_401_invalid_api_key_on_every_endpoint(
    keyed_server: InProcessServer, headers: dict[str, str]
) -> None:
    for method, path, params in ENDPOINTS:
        reply = httpx.request(
            method,
            keyed_server.url + path,
            headers=headers,
            params=params,
            json={"model": "echo", "input": "x"} if method == "POST" else None,
            timeout=WAIT,
        )
        assert_envelope(reply, 401, "invalid_api_key")


def test_a_wrong_key_in_the_sdk_raises_authentication_error(keyed_server: InProcessServer) -> None:
    with (
        keyed_server.client(api_key="wrong") as client,
        pytest.raises(openai.AuthenticationError) as info,
    ):
        client.responses.create(model="echo", input="x")
    assert info.value.status_code == 401
    assert info.value.code == "invalid_api_key"


def test_a_rejected_request_creates_nothing(
    keyed_server: InProcessServer, client_a: OpenAI
) -> None:
    before_health = httpx.get(f"{keyed_server.url}/healthz", timeout=WAIT).json()
    before = keyed_server.database.count_responses()
    reply = httpx.post(
        f"{keyed_server.base_url}/responses",
        json={"model": "echo", "input": "x", "background": True},
        headers=bearer("wrong"),
        timeout=WAIT,
    )
    assert reply.status_code == 401
    assert "id" not in reply.json()
    # The server is shared: nothing was added to what ran, waited or was stored before.
    health = httpx.get(f"{keyed_server.url}/healthz", timeout=WAIT).json()
    assert health.get("running", 0) <= before_health.get("running", 0)
    assert health.get("queued", 0) <= before_health.get("queued", 0)
    assert keyed_server.database.count_responses() == before


def test_healthz_needs_no_key(keyed_server: InProcessServer) -> None:
    assert httpx.get(f"{keyed_server.url}/healthz", timeout=WAIT).status_code == 200
    assert (
        httpx.get(f"{keyed_server.url}/healthz", headers=bearer("wrong"), timeout=WAIT).status_code
        == 200
    )


@pytest.mark.parametrize("key", [KEY_A, KEY_B])
def test_every_configured_key_is_accepted(keyed_server: InProcessServer, key: str) -> None:
    with keyed_server.client(api_key=key) as client:
        response = client.responses.create(model="echo", input=f"hello {key}")
    assert response.output_text == f"hello {key}"


def test_the_bearer_scheme_is_case_insensitive(keyed_server: InProcessServer) -> None:
    reply = httpx.post(
        f"{keyed_server.base_url}/responses",
        json={"model": "echo", "input": "x"},
        headers={"Authorization": f"bearer {KEY_A}"},
        timeout=WAIT,
    )
    assert reply.status_code == 200, reply.text


# --------------------------------------------------------------------------------------------
# ownership


def test_a_response_of_key_a_does_not_exist_for_key_b(
    keyed_server: InProcessServer, client_a: OpenAI, client_b: OpenAI
) -> None:
    created = client_a.responses.create(model="echo", input="owned by a", background=True)
    done = wait_until_done(client_a, created.id)
    assert done.status == "completed"
    rid = created.id

    with pytest.raises(openai.NotFoundError) as info:
        client_b.responses.retrieve(rid)
    assert info.value.code == "response_not_found"
    with pytest.raises(openai.NotFoundError):
        list(client_b.responses.retrieve(rid, stream=True))
    with pytest.raises(openai.NotFoundError):
        list(client_b.responses.retrieve(rid, stream=True, starting_after=2))
    with pytest.raises(openai.NotFoundError):
        client_b.responses.cancel(rid)
    with pytest.raises(openai.NotFoundError):
        client_b.responses.delete(rid)
    with pytest.raises(openai.NotFoundError):
        client_b.responses.input_items.list(rid)
    with pytest.raises(openai.BadRequestError) as chained:
        client_b.responses.create(model="echo", input="x", previous_response_id=rid)
    assert chained.value.code == "previous_response_not_found"
    assert chained.value.param == "previous_response_id"

    # raw: the 404s are the same as for an id that never existed
    for method, path, params in [
        ("GET", f"/v1/responses/{rid}", None),
        ("GET", f"/v1/responses/{rid}", {"stream": "true"}),
        ("POST", f"/v1/responses/{rid}/cancel", None),
        ("DELETE", f"/v1/responses/{rid}", None),
        ("GET", f"/v1/responses/{rid}/input_items", None),
    ]:
        reply = httpx.request(
            method, keyed_server.url + path, params=params, headers=bearer(KEY_B), timeout=WAIT
        )
        error = assert_envelope(reply, 404, "response_not_found")
        assert error["message"] == f"Response with id '{rid}' not found."

    # key-a still sees all of it, unchanged by key-b's attempts
    assert client_a.responses.retrieve(rid) == done
    events = list(client_a.responses.retrieve(rid, stream=True))
    assert events[-1].type == "response.completed"
    assert [i.id for i in client_a.responses.input_items.list(rid).data]
    follow = client_a.responses.create(model="echo", input="next", previous_response_id=rid)
    assert follow.status == "completed"
    client_a.responses.delete(rid)
    with pytest.raises(openai.NotFoundError):
        client_a.responses.retrieve(rid)


def test_key_b_cannot_cancel_a_running_response_of_key_a(
    client_a: OpenAI, client_b: OpenAI, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    created = client_a.responses.create(model="block", input=f"marker={marker}", background=True)
    deadline = time.monotonic() + WAIT
    while not (marker.exists() and marker.read_text() == "started"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with pytest.raises(openai.NotFoundError):
        client_b.responses.cancel(created.id)
    assert client_a.responses.retrieve(created.id).status == "in_progress"
    assert client_a.responses.cancel(created.id).status == "cancelled"


def test_a_foreground_response_of_key_a_does_not_exist_for_key_b(
    client_a: OpenAI, client_b: OpenAI
) -> None:
    response = client_a.responses.create(model="echo", input="foreground a")
    with pytest.raises(openai.NotFoundError):
        client_b.responses.retrieve(response.id)
    assert client_a.responses.retrieve(response.id).status == "completed"


def test_key_b_cannot_chain_on_a_chain_of_key_a(client_a: OpenAI, client_b: OpenAI) -> None:
    first = client_a.responses.create(model="echo", input="one")
    second = client_a.responses.create(model="echo", input="two", previous_response_id=first.id)
    with pytest.raises(openai.BadRequestError) as info:
        client_b.responses.create(model="echo", input="three", previous_response_id=second.id)
    assert info.value.code == "previous_response_not_found"
