"""Details of a hardened server: what a client cutting an upload leaves in the log, what an
unknown method is told, and that another key's response and a never-existing one take one path."""

from __future__ import annotations

import logging
import socket

import httpx
import pytest
from inprocess import A2A_ROUTER, InProcessServer, ServerPool, fresh_key

from a2a_support import rpc, rpc_message
from helpers import wait_until


def test_a_client_gone_mid_upload_is_one_log_line_without_a_traceback(
    server: InProcessServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            b"POST /v1/responses HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: 100000\r\n\r\n" + b'{"model": "echo", "input": "' + b"x" * 1000
        )
    wait_until(lambda: any("disconnected" in r.getMessage() for r in caplog.records), "the line")
    mine = [r for r in caplog.records if "disconnected" in r.getMessage()]
    assert len(mine) == 1
    assert "POST /v1/responses" in mine[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("TRACE", "/v1/responses", {"GET", "POST"}), ("PUT", "/healthz", {"GET"}),
     ("TRACE", "/v1/responses/resp_x", {"GET", "DELETE"})],
)  # fmt: skip
def test_a_method_a_path_does_not_have_gets_405_with_allow(
    server: InProcessServer, method: str, path: str, allowed: set[str]
) -> None:
    answer = httpx.request(method, server.url + path)
    assert answer.status_code == 405
    assert answer.json()["error"]["code"] == "method_not_allowed"
    assert allowed <= {m.strip() for m in answer.headers["allow"].split(",")}
    assert method not in answer.headers["allow"]


@pytest.mark.parametrize("url", ["http://[2002:7f00:1::]/hook", "http://[64:ff9b::a9fe:a9fe]/"])
def test_a_push_url_carrying_a_loopback_or_private_ipv4_address_is_refused(
    servers: ServerPool, url: str
) -> None:
    server = servers.get("sqlite", "--drain-timeout", "1", agent=A2A_ROUTER)
    params = rpc_message("hi", configuration={"taskPushNotificationConfig": {"url": url}})
    answer = rpc(server, {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params})
    assert answer["error"]["code"] == -32602, answer


def test_the_listing_says_when_each_ended_response_did(server: InProcessServer) -> None:
    key = fresh_key()
    with server.client(api_key=key) as client:
        failed = client.responses.create(model="fail", input="boom", background=True)
        held = client.responses.create(model="block", input="hold", background=True)
        wait_until(lambda: client.responses.retrieve(failed.id).status == "failed", "it fails")
        wait_until(lambda: client.responses.retrieve(held.id).status == "in_progress", "it runs")
        running = httpx.get(
            f"{server.url}/v1/responses", headers={"Authorization": f"Bearer {key}"}
        ).json()
        client.responses.cancel(held.id)
        listed = httpx.get(
            f"{server.url}/v1/responses", headers={"Authorization": f"Bearer {key}"}
        ).json()
    # The server is shared (and open: every key is one owner); only these two are this test's.
    mine = {failed.id, held.id}
    assert set(running["ended_at"]) & mine == {failed.id}
    assert set(listed["ended_at"]) & mine == mine
    by_id = {r["id"]: r for r in listed["data"]}
    for rid in (failed.id, held.id):
        assert by_id[rid]["completed_at"] is None
        assert listed["ended_at"][rid] >= by_id[rid]["created_at"]
