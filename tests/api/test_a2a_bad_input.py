"""Bad A2A input gets the spec's error codes, and a rejected request stores nothing.

JSON-RPC codes: -32700 parse error, -32600 invalid request, -32601 method not found, -32602
invalid params, -32001 task not found, -32002 task not cancelable, -32004 unsupported operation,
-32005 content type not supported, -32009 version not supported. The HTTP+JSON binding answers
the same errors with their HTTP status.

The tests share one in-process server (SQLite, ``--max-body-size 4096``), so "stores nothing"
means no task listed and no response stored beyond those there before the test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from inprocess import A2A_ROUTER, InProcessServer, ServerPool

from a2a_support import TIMEOUT, rpc, rpc_message


@pytest.fixture
def server(servers: ServerPool) -> InProcessServer:
    return servers.get(
        "sqlite", "--drain-timeout", "1", "--max-body-size", "4096", agent=A2A_ROUTER
    )


def error_code(answer: dict[str, Any]) -> int:
    assert "result" not in answer, answer
    code: int = answer["error"]["code"]
    return code


def call(server: InProcessServer, method: str, params: Any, **headers: str) -> dict[str, Any]:
    answer: dict[str, Any] = rpc(
        server, {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}, headers
    )
    return answer


def finished_task(server: InProcessServer) -> str:
    answer = call(server, "SendMessage", rpc_message("short"))
    task_id: str = answer["result"]["task"]["id"]
    assert answer["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    return task_id


def listed(server: InProcessServer) -> int:
    total: int = call(server, "ListTasks", {})["result"].get("totalSize", 0)
    return total


# -- malformed JSON-RPC ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", -32700),
        ('{"jsonrpc": "1.0", "id": 1, "method": "GetTask", "params": {"id": "x"}}', -32600),
        ('{"jsonrpc": "2.0", "id": 1, "params": {}}', -32600),
        ('[{"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "x"}}]', -32600),
        ('{"jsonrpc": "2.0", "id": 1, "method": "tasks/frobnicate", "params": {}}', -32601),
        ('{"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": 5, "x": []}}', -32602),
    ],
    ids=["not-json", "wrong-version", "no-method", "batch", "unknown-method", "bad-params"],
)
def test_malformed_json_rpc_gets_the_spec_error(
    server: InProcessServer, body: str, code: int
) -> None:
    assert error_code(rpc(server, body)) == code


_SEND = '{"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": %s}'
_MESSAGE = '{"message": {"role": "ROLE_USER", "messageId": "m1", "parts": [{"data": %s}]}}'
_DEEP = "[" * 200 + "]" * 200  # well past protobuf's limit and Python's comfort, within 4 KiB
_UNDECODABLE = b'{"message": {"role": "ROLE_USER", "messageId": "\xff\xfe", "parts": []}}'


@pytest.mark.parametrize(
    "body",
    [(_SEND % _MESSAGE % _DEEP).encode(), _SEND.encode() % _UNDECODABLE],
    ids=["deep-nesting", "invalid-utf8"],
)
def test_a_body_that_is_not_sound_json_is_a_parse_error_in_our_words(
    server: InProcessServer, body: bytes
) -> None:
    tasks = listed(server)
    answer = rpc(server, body)
    assert error_code(answer) == -32700
    message = answer["error"]["message"]
    assert message.startswith("The request body ")
    assert "recursion" not in message and "codec" not in message  # no Python exception text
    assert listed(server) == tasks


@pytest.mark.parametrize(
    "body", [(_MESSAGE % _DEEP).encode(), _UNDECODABLE], ids=["deep-nesting", "invalid-utf8"]
)
def test_rest_answers_a_body_that_is_not_sound_json_with_400(
    server: InProcessServer, body: bytes
) -> None:
    response = httpx.post(
        f"{server.url}/v1/a2a/message:send",
        content=body,
        headers={"A2A-Version": "1.0", "Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("The request body ")


def test_nesting_within_the_limit_reaches_the_agent_as_data(server: InProcessServer) -> None:
    nested = "[" * 40 + "1" + "]" * 40
    answer = rpc(server, _SEND % _MESSAGE % nested)
    assert answer["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


def test_a_request_without_the_a2a_version_header_is_taken_as_0_3_and_refused(
    server: InProcessServer,
) -> None:
    response = httpx.post(
        f"{server.url}/v1/a2a",
        json={"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "x"}},
        timeout=TIMEOUT,
    )
    assert error_code(response.json()) == -32009


# -- sends that store nothing --------------------------------------------------------------------


BAD_SENDS: list[tuple[str, dict[str, Any], int]] = [
    ("no-message", {}, -32602),
    ("no-parts", {"message": {"messageId": "m", "role": "ROLE_USER", "parts": []}}, -32602),
    (
        "agent-role",
        {"message": {"messageId": "m", "role": "ROLE_AGENT", "parts": [{"text": "hi"}]}},
        -32602,
    ),
    ("empty-part", {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{}]}}, -32602),
    (
        "image-only-output",
        rpc_message("hi", configuration={"acceptedOutputModes": ["image/png"]}),
        -32005,
    ),
    (
        "file-of-an-unaccepted-type",
        {
            "message": {
                "messageId": "m",
                "role": "ROLE_USER",
                "parts": [
                    {"text": "read this"},
                    {"raw": "AAEC", "mediaType": "application/x-unknown-binary"},
                ],
            }
        },
        -32005,
    ),
    ("model-not-a-string", rpc_message("hi", metadata={"model": 5}), -32602),
    ("too-much-metadata", rpc_message("hi", metadata={f"k{i}": "v" for i in range(17)}), -32602),
    ("negative-history", rpc_message("hi", configuration={"historyLength": -1}), -32602),
    (
        "unknown-task",
        {
            "message": {
                "messageId": "m",
                "role": "ROLE_USER",
                "taskId": "resp_no",
                "parts": [{"text": "hi"}],
            }
        },
        -32001,
    ),
    (
        "loopback-push",
        rpc_message(
            "hi", configuration={"taskPushNotificationConfig": {"url": "http://127.0.0.1:9/hook"}}
        ),
        -32602,
    ),
    (
        "private-push",
        rpc_message(
            "hi", configuration={"taskPushNotificationConfig": {"url": "http://10.0.0.1/hook"}}
        ),
        -32602,
    ),
    (
        "ftp-push",
        rpc_message(
            "hi", configuration={"taskPushNotificationConfig": {"url": "ftp://example.com/hook"}}
        ),
        -32602,
    ),
]


@pytest.mark.parametrize(
    ("params", "code"), [(p, c) for _, p, c in BAD_SENDS], ids=[n for n, _, _ in BAD_SENDS]
)
def test_a_bad_send_gets_the_spec_error_and_stores_nothing(
    server: InProcessServer, params: dict[str, Any], code: int
) -> None:
    tasks, responses = listed(server), server.database.count_responses()
    for method in ("SendMessage", "SendStreamingMessage"):
        assert error_code(call(server, method, params)) == code
    assert listed(server) == tasks
    assert server.database.count_responses() == responses


def test_a_message_to_a_finished_task_is_unsupported_and_starts_nothing(
    server: InProcessServer,
) -> None:
    tasks, responses = listed(server), server.database.count_responses() or 0
    task_id = finished_task(server)
    params = rpc_message("more?")
    params["message"]["taskId"] = task_id
    assert error_code(call(server, "SendMessage", params)) == -32004
    assert listed(server) == tasks + 1
    assert server.database.count_responses() == responses + 1


def test_a_body_over_the_limit_is_an_invalid_request(server: InProcessServer) -> None:
    answer = call(server, "SendMessage", rpc_message("x" * 5000))
    assert error_code(answer) == -32600
    assert "larger than the limit" in answer["error"]["message"]


# -- tasks that do not exist, or cannot do that --------------------------------------------------


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("GetTask", {"id": "resp_unknown"}),
        ("CancelTask", {"id": "resp_unknown"}),
        ("SubscribeToTask", {"id": "resp_unknown"}),
        ("ListTaskPushNotificationConfigs", {"taskId": "resp_unknown"}),
        (
            "CreateTaskPushNotificationConfig",
            {"taskId": "resp_unknown", "url": "https://example.com/h"},
        ),
    ],
)
def test_an_unknown_task_is_not_found(server: InProcessServer, method: str, params: Any) -> None:
    assert error_code(call(server, method, params)) == -32001


def test_a_response_of_the_responses_api_is_not_an_a2a_task(server: InProcessServer) -> None:
    with server.client() as openai:
        response = openai.responses.create(model="echo", input="hi")
    assert error_code(call(server, "GetTask", {"id": response.id})) == -32001


def test_a_finished_task_cannot_be_cancelled_or_subscribed_to(server: InProcessServer) -> None:
    task_id = finished_task(server)
    assert error_code(call(server, "CancelTask", {"id": task_id})) == -32002
    answer = call(server, "SubscribeToTask", {"id": task_id})
    assert error_code(answer) == -32004
    assert "TASK_STATE_COMPLETED" in answer["error"]["message"]


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "99999999999999999999"])
def test_a_bad_last_event_id_is_invalid_params(server: InProcessServer, value: str) -> None:
    task_id = finished_task(server)
    answer = call(server, "SubscribeToTask", {"id": task_id}, **{"Last-Event-ID": value})
    assert error_code(answer) == -32602


@pytest.mark.parametrize(
    "params",
    [{"pageSize": 0}, {"pageSize": 101}, {"pageToken": "not-a-token"}, {"historyLength": -2}],
)
def test_bad_list_parameters_are_invalid_params(server: InProcessServer, params: Any) -> None:
    assert error_code(call(server, "ListTasks", params)) == -32602


# -- the HTTP+JSON binding -----------------------------------------------------------------------


def test_rest_errors_carry_their_http_status(server: InProcessServer) -> None:
    headers = {"A2A-Version": "1.0"}
    with httpx.Client(base_url=f"{server.url}/v1/a2a", timeout=TIMEOUT, headers=headers) as http:
        missing = http.get("/tasks/resp_unknown")
        assert missing.status_code == 404
        assert missing.json()["error"]["status"] == "NOT_FOUND"
        assert http.post("/message:send", content=b"{oops").status_code == 400
        assert http.post("/message:send", content=b"x" * 5000).status_code == 413
        task_id = finished_task(server)
        # A2A 1.0 §5.4's status (a2a-sdk's own table says 400).
        ended = http.post(f"/tasks/{task_id}:cancel")
        assert ended.status_code == 409
        assert ended.json()["error"]["status"] == "FAILED_PRECONDITION"
        refused = http.post(
            "/message:send",
            json={
                "message": {
                    "messageId": "m1",
                    "role": "ROLE_USER",
                    "parts": [{"text": "x"}],
                    "taskId": task_id,
                }
            },
        )
        assert refused.status_code == 400
        assert refused.json()["error"]["details"][0]["reason"] == "UNSUPPORTED_OPERATION"


# -- switching A2A on and off ----------------------------------------------------------------------
# (Without the a2a extra installed, asking for A2A is refused by the CLI: a process of its own,
# in tests/e2e/test_a2a_without_extra.py.)


def test_no_a2a_serves_no_agent_card(make_server: Callable[..., InProcessServer]) -> None:
    server = make_server("--drain-timeout", "1", "--no-a2a", agent=A2A_ROUTER)
    assert (
        httpx.get(f"{server.url}/.well-known/agent-card.json", timeout=TIMEOUT).status_code == 404
    )
    assert httpx.post(f"{server.url}/v1/a2a", json={}, timeout=TIMEOUT).status_code == 404
