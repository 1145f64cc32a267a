"""A2A refusals for want of room are the client's to retry, never a server error.

A2A has no error of its own for a full queue, a key at one of its limits or a draining server.
outlast answers them as the Responses API does: over HTTP+JSON a 429 (``RESOURCE_EXHAUSTED``)
with ``Retry-After``, over JSON-RPC an internal error (``-32603``) whose message says why and
whose ``data`` (an ``ErrorInfo``, reason ``RESOURCE_EXHAUSTED``) says in
``retryAfterSeconds`` when to retry; the first send, within the limit, runs.
"""

from __future__ import annotations

import httpx
import pytest
from inprocess import A2A_ROUTER, InProcessServer, ServerPool

from a2a_support import TIMEOUT, rpc, rpc_message

KEYS = ("a2a-rest-key", "a2a-rpc-key")  # one per test: the server is shared


@pytest.fixture
def server(servers: ServerPool) -> InProcessServer:
    # One create an hour per key: a key's second send is over its rate.
    keys = [flag for key in KEYS for flag in ("--api-key", key)]
    return servers.get("sqlite", *keys, "--key-limit", "* rate=1/h", agent=A2A_ROUTER)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def rest_send(server: InProcessServer, text: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/a2a/message:send",
        json=rpc_message(text),
        headers={"A2A-Version": "1.0", **bearer(KEYS[0])},
        timeout=TIMEOUT,
    )


def test_a_send_over_the_keys_rate_is_a_429_with_retry_after_over_http_json(
    server: InProcessServer,
) -> None:
    assert rest_send(server, "short").status_code == 200
    refused = rest_send(server, "short")
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["retry-after"]) >= 1
    error = refused.json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    assert "rate" in error["message"].lower()


def test_a_send_over_the_keys_rate_is_a_retryable_error_over_json_rpc(
    server: InProcessServer,
) -> None:
    send = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage"}
    first = rpc(server, {**send, "params": rpc_message("short")}, bearer(KEYS[1]))
    assert "result" in first, first
    refused = rpc(server, {**send, "params": rpc_message("short")}, bearer(KEYS[1]))
    assert refused["error"]["code"] == -32603, refused
    assert "rate" in refused["error"]["message"].lower()
    (info,) = refused["error"]["data"]
    assert info["reason"] == "RESOURCE_EXHAUSTED"
    assert info["metadata"]["retryAfterSeconds"] >= 1
