"""Bad requests get OpenAI's error envelope and change nothing (contract: "Errors").

Raw ``httpx`` against a real server: malformed JSON, wrong types, unknown parameters, metadata
limits, bad ``input`` shapes, oversized bodies (413), bad query parameters (``starting_after``,
``limit``, ``order``), unknown response ids (404 ``response_not_found`` on every endpoint) and
unknown routes. Every error body must be exactly ``{"error": {"message", "type", "param",
"code"}}``. After each bad request the test checks that nothing was stored (the server's
``responses`` table, read-only: the rows beyond those there when the test began are exactly the
test's good requests) and that the server still serves a normal request.

The tests share one in-process server on SQLite (request validation does not depend on the
backend); the 429 test has a server of its own, since ``--max-queued`` bounds every caller.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from inprocess import InProcessServer

from databases import TestDatabase

AUTH = {"Authorization": "Bearer test-key"}
WAIT = 30.0
MiB = 1024 * 1024


class Api:
    """A raw HTTP client for one server that also tracks how many responses should be stored.

    The server may be shared: what counts is the rows added since this client was made.
    """

    def __init__(self, server: InProcessServer, database: TestDatabase) -> None:
        self.server = server
        self.database = database
        self.http = httpx.Client(base_url=server.url, headers=AUTH, timeout=WAIT)
        self.before = database.count_responses() or 0
        self.stored = 0

    def close(self) -> None:
        self.http.close()

    def create_ok(self, **body: Any) -> dict[str, Any]:
        """A normal create request that must succeed (foreground unless told otherwise)."""
        body = {"model": "echo", "input": "still serving", **body}
        reply = self.http.post("/v1/responses", json=body)
        assert reply.status_code == 200, reply.text
        response: dict[str, Any] = reply.json()
        if body.get("store", True):
            self.stored += 1
        if body.get("background"):
            response = self.wait_done(response["id"])
        assert response["status"] == "completed", response
        return response

    def wait_done(self, response_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT
        while True:
            reply = self.http.get(f"/v1/responses/{response_id}")
            assert reply.status_code == 200, reply.text
            body: dict[str, Any] = reply.json()
            if body["status"] not in ("queued", "in_progress"):
                return body
            assert time.monotonic() < deadline, f"{response_id} still {body['status']}"
            time.sleep(0.05)

    def stored_count(self) -> int | None:
        """Rows this client's requests added to the server's ``responses`` table, or None when
        the database has no such table."""
        count = self.database.count_responses()
        return None if count is None else count - self.before

    def settle(self) -> int | None:
        """The rows added, once the good requests' rows are visible (writes may be
        group-committed)."""
        deadline = time.monotonic() + WAIT
        count = self.stored_count()
        while count is not None and count < self.stored and time.monotonic() < deadline:
            time.sleep(0.05)
            count = self.stored_count()
        return count

    def check_unharmed(self) -> None:
        """The server still serves a normal request, and only the good requests were stored."""
        self.create_ok()
        count = self.settle()
        if count is not None:
            assert count == self.stored, f"{count} responses stored, expected {self.stored}"
        assert httpx.get(f"{self.server.url}/healthz", timeout=WAIT).status_code == 200


@pytest.fixture
def api(server: InProcessServer) -> Iterator[Api]:
    """An :class:`Api` on the shared server; at the end its rows are visible, so that the next
    test's count starts from all of them."""
    client = Api(server, server.database)
    yield client
    client.settle()
    client.close()


def assert_error(
    reply: httpx.Response,
    status: int,
    *,
    param: str | None = None,
    code: str | None = None,
    type_: str = "invalid_request_error",
    check_param: bool = True,
) -> dict[str, Any]:
    """``reply`` is an error of ``status`` with exactly the four-key OpenAI envelope."""
    assert reply.status_code == status, (reply.status_code, reply.text)
    assert reply.headers["content-type"].startswith("application/json"), reply.headers
    body = reply.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"], error
    assert error["type"] == type_, error
    if check_param:
        assert error["param"] == param, error
    if code is not None:
        assert error["code"] == code, error
    return dict(error)


def post_create(api: Api, body: Any) -> httpx.Response:
    return api.http.post("/v1/responses", json=body)


# --------------------------------------------------------------------------------------------
# malformed bodies


@pytest.mark.parametrize(
    "content",
    [
        b'{"model": "echo", "input": ',
        b"not json at all",
        b"{'model': 'echo'}",
        b"",
        b'{"model": "echo", "input": "x"} trailing',
    ],
    ids=["truncated", "text", "single-quotes", "empty", "trailing-garbage"],
)
def test_malformed_json_is_rejected_with_invalid_json(api: Api, content: bytes) -> None:
    reply = api.http.post(
        "/v1/responses", content=content, headers={"Content-Type": "application/json"}
    )
    assert_error(reply, 400, param=None, code="invalid_json")
    api.check_unharmed()


@pytest.mark.parametrize(
    "body", [[1, 2], "a string", 5, None], ids=["array", "string", "number", "null"]
)
def test_a_json_body_that_is_not_an_object_is_rejected(api: Api, body: Any) -> None:
    reply = api.http.post(
        "/v1/responses", content=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    error = assert_error(reply, 400, param=None)
    assert error["code"], error
    api.check_unharmed()


# --------------------------------------------------------------------------------------------
# wrong types, unknown and missing parameters


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", "hot"),
        ("top_p", "high"),
        ("background", "yes"),
        ("stream", "yes"),
        ("store", "no"),
        ("model", 5),
        ("model", ["echo"]),
        ("instructions", 5),
        ("metadata", "x=1"),
        ("metadata", ["x"]),
        ("max_output_tokens", "many"),
        ("max_output_tokens", 1.5),
        ("previous_response_id", 5),
        ("parallel_tool_calls", "yes"),
        ("background", 1),
        ("temperature", True),
    ],
)
def test_wrong_types_are_rejected_with_invalid_type_and_the_field_as_param(
    api: Api, field: str, value: Any
) -> None:
    body = {"model": "echo", "input": "x", field: value}
    assert_error(post_create(api, body), 400, param=field, code="invalid_type")
    api.check_unharmed()


@pytest.mark.parametrize("name", ["frobnicate", "Model", "inputs", "response_id", "api_key"])
def test_unknown_parameters_are_rejected_with_their_name_as_param(api: Api, name: str) -> None:
    body = {"model": "echo", "input": "x", name: 1}
    error = assert_error(post_create(api, body), 400, param=name, code="unknown_parameter")
    assert name in error["message"]
    api.check_unharmed()


def test_missing_model_is_rejected(api: Api) -> None:
    assert_error(
        post_create(api, {"input": "x"}), 400, param="model", code="missing_required_parameter"
    )
    api.check_unharmed()


def test_missing_model_in_background_mode_is_rejected(api: Api) -> None:
    assert_error(
        post_create(api, {"input": "x", "background": True}),
        400,
        param="model",
        code="missing_required_parameter",
    )
    api.check_unharmed()


def test_null_optional_parameters_are_accepted(api: Api) -> None:
    """``null`` means "not given" for optional parameters, as the SDKs send it."""
    response = api.create_ok(
        temperature=None, top_p=None, metadata=None, instructions=None, max_output_tokens=None
    )
    assert response["metadata"] == {}
    api.check_unharmed()


# --------------------------------------------------------------------------------------------
# metadata limits


def test_metadata_at_its_limits_is_accepted(api: Api) -> None:
    metadata = {f"k{i:02d}" + "x" * 61: "v" * 512 for i in range(16)}
    assert all(len(k) == 64 for k in metadata)
    response = api.create_ok(metadata=metadata)
    assert response["metadata"] == metadata
    api.check_unharmed()


@pytest.mark.parametrize(
    "metadata",
    [
        {f"k{i}": "v" for i in range(17)},
        {"k" * 65: "v"},
        {"key": "v" * 513},
    ],
    ids=["17-pairs", "65-char-key", "513-char-value"],
)
def test_metadata_over_its_limits_is_rejected(api: Api, metadata: dict[str, str]) -> None:
    assert_error(
        post_create(api, {"model": "echo", "input": "x", "metadata": metadata}),
        400,
        param="metadata",
        code="invalid_value",
    )
    assert_error(
        post_create(api, {"model": "echo", "input": "x", "metadata": metadata, "background": True}),
        400,
        param="metadata",
        code="invalid_value",
    )
    api.check_unharmed()


@pytest.mark.parametrize("value", [1, True, None, {"a": "b"}, ["v"]])
def test_metadata_with_a_non_string_value_is_rejected(api: Api, value: Any) -> None:
    # a wrong JSON type (OpenAI: "Invalid type for 'metadata.key'") -> invalid_type
    assert_error(
        post_create(api, {"model": "echo", "input": "x", "metadata": {"key": value}}),
        400,
        param="metadata",
        code="invalid_type",
    )
    api.check_unharmed()


# --------------------------------------------------------------------------------------------
# input shapes


@pytest.mark.parametrize("value", [5, {"a": 1}, True, 1.5], ids=["int", "object", "bool", "float"])
def test_input_that_is_neither_a_string_nor_a_list_is_rejected(api: Api, value: Any) -> None:
    # a wrong JSON type for 'input' (OpenAI: "Invalid type for 'input'") -> invalid_type
    assert_error(
        post_create(api, {"model": "echo", "input": value}), 400, param="input", code="invalid_type"
    )
    api.check_unharmed()


@pytest.mark.parametrize(
    "items",
    [
        [5],
        ["a string item"],
        [{"role": "robot", "content": "x"}],
        [{"role": "user", "content": 5}],
        [{"type": 5, "role": "user", "content": "x"}],
    ],
    ids=["number-item", "string-item", "bad-role", "bad-content", "bad-type"],
)
def test_input_items_of_the_wrong_shape_are_rejected(api: Api, items: list[Any]) -> None:
    error = assert_error(
        post_create(api, {"model": "echo", "input": items}), 400, check_param=False
    )
    assert isinstance(error["param"], str) and error["param"].startswith("input"), error
    assert error["code"] in ("invalid_type", "invalid_value"), error
    api.check_unharmed()


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("temperature", 5, "decimal_above_max_value"),
        ("temperature", -0.1, "decimal_below_min_value"),
        ("top_p", 1.5, "decimal_above_max_value"),
        ("presence_penalty", 2.5, "decimal_above_max_value"),
        ("frequency_penalty", -3, "decimal_below_min_value"),
        ("max_output_tokens", -1, "integer_below_min_value"),
        ("max_output_tokens", 15, "integer_below_min_value"),
        ("top_logprobs", 21, "integer_above_max_value"),
        ("top_logprobs", -1, "integer_below_min_value"),
        ("max_tool_calls", -1, "integer_below_min_value"),
    ],
)
def test_values_out_of_openais_ranges_are_rejected(
    api: Api, field: str, value: float, code: str
) -> None:
    body = {"model": "echo", "input": "x", field: value}
    error = assert_error(post_create(api, body), 400, param=field, code=code)
    assert str(value) in error["message"]
    api.check_unharmed()


def test_values_at_the_ends_of_the_ranges_are_accepted(api: Api) -> None:
    low = api.create_ok(temperature=0, top_p=0, presence_penalty=-2, frequency_penalty=-2,
                        max_output_tokens=16, top_logprobs=0)  # fmt: skip
    high = api.create_ok(temperature=2, top_p=1, presence_penalty=2, frequency_penalty=2,
                         top_logprobs=20)  # fmt: skip
    assert (low["temperature"], high["temperature"]) == (0, 2)
    assert (low["max_output_tokens"], high["top_logprobs"]) == (16, 20)
    api.check_unharmed()


@pytest.mark.parametrize(
    ("item", "param", "code"),
    [
        ({"type": "frobnicate"}, "input[0].type", "invalid_value"),
        ({"type": "message", "role": ["user"], "content": "x"}, "input[0].role", "invalid_type"),
        ({"role": {"user": True}, "content": "x"}, "input[0].role", "invalid_type"),
        ({"role": 7, "content": "x"}, "input[0].role", "invalid_type"),
        ({"role": "user", "content": "x", "id": 5}, "input[0].id", "invalid_type"),
        ({"role": "user", "content": "x", "id": {"a": 1}}, "input[0].id", "invalid_type"),
        ({"role": "user", "content": "x", "status": "done"}, "input[0].status", "invalid_value"),
        ({"role": "user", "content": "x", "status": 1}, "input[0].status", "invalid_type"),
        ({"role": "assistant", "content": "x", "phase": "final"}, "input[0].phase",
         "invalid_value"),
        ({"role": "user", "content": [{"type": "output_text", "text": "x"}]},
         "input[0].content[0].type", "invalid_value"),
        ({"role": "user", "content": [{"type": "input_text"}]}, "input[0].content[0].text",
         "missing_required_parameter"),
        ({"role": "user", "content": [{"type": "input_text", "text": 5}]},
         "input[0].content[0].text", "invalid_type"),
        ({"role": "user", "content": [{"type": "input_image"}]},
         "input[0].content[0].image_url", "missing_required_parameter"),
        ({"role": "user", "content": [{"type": "input_image", "image_url": "not a url"}]},
         "input[0].content[0].image_url", "invalid_image_url"),
        ({"role": "user", "content": [{"type": "input_image", "image_url": "ftp://h/a.png"}]},
         "input[0].content[0].image_url", "invalid_image_url"),
        ({"role": "user", "content": [{"type": "input_image", "image_url": "data:text/plain,x"}]},
         "input[0].content[0].image_url", "invalid_image_url"),
        ({"role": "user", "content": [{"type": "input_image", "image_url": 5}]},
         "input[0].content[0].image_url", "invalid_type"),
        ({"role": "user", "content": [{"type": "input_image", "image_url": "https://h/a.png",
                                       "detail": "huge"}]},
         "input[0].content[0].detail", "invalid_value"),
        ({"role": "user", "content": [{"type": "input_file", "filename": "a.pdf"}]},
         "input[0].content[0].file_id", "missing_required_parameter"),
        ({"type": "function_call", "name": "f", "arguments": "{}"}, "input[0].call_id",
         "missing_required_parameter"),
        ({"type": "function_call", "call_id": "c", "name": 5, "arguments": "{}"},
         "input[0].name", "invalid_value"),
        ({"type": "function_call_output", "call_id": "c", "output": 5}, "input[0].output",
         "invalid_value"),
        ({"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}",
          "status": "done"}, "input[0].status", "invalid_value"),
        ({"type": "reasoning", "summary": [{"type": "summary_text", "text": 5}]},
         "input[0].summary[0].text", "invalid_value"),
    ],
    ids=[
        "unknown-type", "role-array", "role-object", "role-number", "id-number", "id-object",
        "status-unknown", "status-number", "phase-unknown", "user-output-part",
        "text-missing", "text-number", "image-without-url", "image-bad-url", "image-ftp-url",
        "image-non-image-data-url", "image-url-number", "image-bad-detail", "file-without-data",
        "call-without-call-id", "call-name-number", "call-output-number", "call-bad-status",
        "reasoning-text-number",
    ],
)  # fmt: skip
def test_input_items_are_checked_against_the_sdks_input_item_types(
    api: Api, item: dict[str, Any], param: str, code: str
) -> None:
    """Each item is checked as the SDK's ``ResponseInputItemParam`` declares it: a clear 400
    naming the field, never a 500 (a non-string role used to be one, resetting the socket)."""
    body = {"model": "echo", "input": [item]}
    assert_error(post_create(api, body), 400, param=param, code=code)
    api.check_unharmed()


@pytest.mark.parametrize(
    "item",
    [
        {"role": "user", "content": [{"type": "input_image", "image_url": "https://h/a.png"}]},
        {"role": "user", "content": [{"type": "input_image",
                                      "image_url": "data:image/png;base64,iVBORw0KGgo="}]},
        {"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]},
        {"role": "user", "content": [{"type": "input_file", "file_url": "https://h/a.pdf"}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "hi"}],
         "phase": "final_answer", "id": "msg_1", "status": "completed"},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "42"},
        {"type": "function_call_output", "call_id": "c",
         "output": [{"type": "input_text", "text": "42"}]},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "plan"}]},
        {"type": "item_reference", "id": "msg_123"},
        {"role": "user", "content": "x", "id": None, "status": None},
    ],
    ids=[
        "image-url", "image-data-url", "image-file-id", "file-url", "assistant-output",
        "assistant-refusal", "function-call", "function-call-output", "function-call-output-parts",
        "reasoning", "item-reference", "null-id-and-status",
    ],
)  # fmt: skip
def test_well_formed_input_items_of_every_kind_are_accepted(api: Api, item: dict[str, Any]) -> None:
    response = api.create_ok(input=[item])
    items = api.http.get(f"/v1/responses/{response['id']}/input_items").json()["data"]
    assert len(items) == 1 and isinstance(items[0]["id"], str)
    assert items[0]["type"] == item.get("type", "message")
    api.check_unharmed()


def test_an_image_without_detail_is_stored_with_openais_default(api: Api) -> None:
    part = {"type": "input_image", "image_url": "https://h/a.png"}
    response = api.create_ok(input=[{"role": "user", "content": [part]}])
    items = api.http.get(f"/v1/responses/{response['id']}/input_items").json()["data"]
    assert items[0]["content"] == [{**part, "detail": "auto"}]


@pytest.mark.parametrize("role", [["user"], {"r": 1}, 5, None, True])
def test_a_non_string_role_is_a_400_that_keeps_the_connection_alive(
    server: InProcessServer, role: Any
) -> None:
    """Over one keep-alive HTTP/1.1 connection: the bad request gets its 400, and the next
    request on the same socket is served (a 500 here used to reset the connection)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT)
    try:
        headers = {**AUTH, "Content-Type": "application/json"}
        bad = json.dumps({"model": "echo", "input": [{"role": role, "content": "x"}]})
        connection.request("POST", "/v1/responses", body=bad, headers=headers)
        reply = connection.getresponse()
        error = json.loads(reply.read())["error"]
        assert reply.status == 400, error
        assert error["param"] == "input[0].role", error
        assert error["code"] == "invalid_type", error
        socket_used = connection.sock
        assert socket_used is not None, "the server closed the connection after the 400"
        good = json.dumps({"model": "echo", "input": "still here"})
        connection.request("POST", "/v1/responses", body=good, headers=headers)
        second = connection.getresponse()
        assert second.status == 200 and json.loads(second.read())["status"] == "completed"
        assert connection.sock is socket_used, "the second request needed a new connection"
    finally:
        connection.close()


# --------------------------------------------------------------------------------------------
# request size


def test_a_body_over_16_mib_is_rejected_with_413(api: Api) -> None:
    body = json.dumps({"model": "echo", "input": "x" * (16 * MiB + 10)}).encode()
    try:
        reply = api.http.post(
            "/v1/responses", content=body, headers={"Content-Type": "application/json"}
        )
    except httpx.WriteError:
        pytest.fail("the server closed the connection instead of answering 413")
    assert_error(reply, 413, param=None, code="request_too_large")
    api.check_unharmed()


def test_a_chunked_body_over_16_mib_is_rejected_with_413(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "echo", "input": "'
        for _ in range(17):
            yield b"x" * MiB
        yield b'"}'

    try:
        reply = api.http.post(
            "/v1/responses", content=chunks(), headers={"Content-Type": "application/json"}
        )
    except httpx.WriteError:
        pytest.fail("the server closed the connection instead of answering 413")
    assert_error(reply, 413, param=None, code="request_too_large")
    api.check_unharmed()


def test_a_body_just_under_the_limit_is_accepted(api: Api) -> None:
    text = "y" * (15 * MiB)
    response = api.create_ok(input=text, model="count")
    assert response["status"] == "completed"
    api.check_unharmed()


# --------------------------------------------------------------------------------------------
# query parameters


@pytest.mark.parametrize(
    "value",
    ["-1", "abc", "1.5", "", " 1", "0x10", "\u00b2", "\u0663", "1e3", "+1"],
    ids=[
        "negative",
        "letters",
        "decimal",
        "empty",
        "space",
        "hex",
        "superscript-two",
        "arabic-indic-three",
        "exponent",
        "plus",
    ],
)
def test_starting_after_must_be_a_non_negative_integer(api: Api, value: str) -> None:
    response = api.create_ok(background=True)
    reply = api.http.get(
        f"/v1/responses/{response['id']}", params={"stream": "true", "starting_after": value}
    )
    error = assert_error(reply, 400, param="starting_after")
    assert error["code"], error
    api.check_unharmed()


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"limit": "-5"}, "limit"),
        ({"order": "sideways"}, "order"),
        ({"order": "ASC"}, "order"),
    ],
)
def test_input_items_query_is_validated(api: Api, params: dict[str, str], param: str) -> None:
    response = api.create_ok()
    reply = api.http.get(f"/v1/responses/{response['id']}/input_items", params=params)
    assert_error(reply, 400, param=param)
    api.check_unharmed()


@pytest.mark.parametrize("value", ["99999999999999999999", str(2**63), str(2**63 - 1)])
def test_a_huge_starting_after_is_rejected_or_yields_a_clean_empty_stream(
    api: Api, value: str
) -> None:
    response = api.create_ok(background=True)
    with api.http.stream(
        "GET", f"/v1/responses/{response['id']}", params={"stream": "true", "starting_after": value}
    ) as reply:
        if reply.status_code == 400:
            reply.read()
            assert_error(reply, 400, param="starting_after")
        else:
            assert reply.status_code == 200
            try:
                body = reply.read()
            except httpx.HTTPError as exc:
                pytest.fail(f"the stream broke off instead of ending cleanly: {exc!r}")
            assert b"data:" not in body, body
    api.check_unharmed()


@pytest.mark.parametrize(
    "value",
    ["\u00b2", "\u0663", "+5", " 5"],
    ids=["superscript-two", "arabic-indic-three", "plus", "space"],
)
def test_input_items_limit_must_be_a_plain_integer(api: Api, value: str) -> None:
    response = api.create_ok()
    reply = api.http.get(f"/v1/responses/{response['id']}/input_items", params={"limit": value})
    assert_error(reply, 400, param="limit")
    api.check_unharmed()


def test_input_items_limit_bounds_are_accepted(api: Api) -> None:
    response = api.create_ok()
    for limit in ("1", "100"):
        reply = api.http.get(f"/v1/responses/{response['id']}/input_items", params={"limit": limit})
        assert reply.status_code == 200, reply.text
        assert len(reply.json()["data"]) == 1


def test_get_with_stream_false_answers_json(api: Api) -> None:
    response = api.create_ok(background=True)
    reply = api.http.get(f"/v1/responses/{response['id']}", params={"stream": "false"})
    assert reply.status_code == 200
    assert reply.json()["id"] == response["id"]


# --------------------------------------------------------------------------------------------
# unknown ids and routes


UNKNOWN_ID = "resp_0000000000000000000000000000000000000000000000"


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", "/v1/responses/{id}", None),
        ("GET", "/v1/responses/{id}", {"stream": "true"}),
        ("GET", "/v1/responses/{id}", {"stream": "true", "starting_after": "3"}),
        ("POST", "/v1/responses/{id}/cancel", None),
        ("DELETE", "/v1/responses/{id}", None),
        ("GET", "/v1/responses/{id}/input_items", None),
    ],
    ids=["get", "stream", "stream-after", "cancel", "delete", "input_items"],
)
@pytest.mark.parametrize("response_id", [UNKNOWN_ID, "not-even-an-id"])
def test_unknown_response_ids_are_404_response_not_found(
    api: Api, method: str, path: str, params: dict[str, str] | None, response_id: str
) -> None:
    api.create_ok()  # something exists, just not this
    reply = api.http.request(method, path.format(id=response_id), params=params)
    error = assert_error(reply, 404, param=None, code="response_not_found")
    assert error["message"] == f"Response with id '{response_id}' not found."
    api.check_unharmed()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/nothing"),
        ("GET", "/nope"),
        ("POST", "/v1/responses/resp_x/unknown"),
        ("GET", "/v1/chat/completions"),
        ("GET", "/v1/responses/resp_x/input_items/extra"),
    ],
)
def test_unknown_routes_are_404_in_the_error_envelope(api: Api, method: str, path: str) -> None:
    assert_error(api.http.request(method, path), 404, check_param=False)
    api.check_unharmed()


@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", "/v1/responses"), ("DELETE", "/v1/responses"), ("PATCH", "/v1/responses/resp_x")],
)
def test_wrong_methods_get_an_error_envelope(api: Api, method: str, path: str) -> None:
    reply = api.http.request(method, path)
    assert reply.status_code in (404, 405), reply.text
    assert_error(reply, reply.status_code, check_param=False)
    api.check_unharmed()


def test_deleted_response_ids_are_404_on_every_endpoint(api: Api) -> None:
    response = api.create_ok(background=True)
    rid = response["id"]
    assert api.http.delete(f"/v1/responses/{rid}").status_code == 200
    api.stored -= 1
    for method, path, params in [
        ("GET", f"/v1/responses/{rid}", None),
        ("GET", f"/v1/responses/{rid}", {"stream": "true"}),
        ("POST", f"/v1/responses/{rid}/cancel", None),
        ("DELETE", f"/v1/responses/{rid}", None),
        ("GET", f"/v1/responses/{rid}/input_items", None),
    ]:
        reply = api.http.request(method, path, params=params)
        assert_error(reply, 404, param=None, code="response_not_found")
    api.check_unharmed()


# --------------------------------------------------------------------------------------------
# semantic rejections


def test_background_without_store_is_rejected_and_not_stored(api: Api) -> None:
    body = {"model": "echo", "input": "x", "background": True, "store": False}
    assert_error(post_create(api, body), 400, param="store")
    api.check_unharmed()


def test_unknown_previous_response_id_is_rejected_and_not_stored(api: Api) -> None:
    body = {"model": "echo", "input": "x", "previous_response_id": UNKNOWN_ID}
    error = assert_error(
        post_create(api, body),
        400,
        param="previous_response_id",
        code="previous_response_not_found",
    )
    assert error["message"] == f"Previous response with id '{UNKNOWN_ID}' not found."
    body["background"] = True
    assert_error(
        post_create(api, body),
        400,
        param="previous_response_id",
        code="previous_response_not_found",
    )
    body["stream"] = True
    assert_error(
        post_create(api, body),
        400,
        param="previous_response_id",
        code="previous_response_not_found",
    )
    api.check_unharmed()


def test_a_bad_stream_request_answers_json_not_an_event_stream(api: Api) -> None:
    body = {"model": "echo", "input": "x", "stream": True, "metadata": {"k" * 65: "v"}}
    reply = post_create(api, body)
    assert_error(reply, 400, param="metadata", code="invalid_value")
    api.check_unharmed()


# --------------------------------------------------------------------------------------------
# limits on queued work


def test_too_much_queued_work_is_429_rate_limit_exceeded(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server = make_server("--max-running", "1", "--max-queued", "1")
    api = Api(server, server.database)
    try:
        marker = tmp_path / "marker"
        running = api.http.post(
            "/v1/responses",
            json={"model": "block", "input": f"marker={marker}", "background": True},
        ).json()
        deadline = time.monotonic() + WAIT
        while not (marker.exists() and marker.read_text() == "started"):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        queued = api.http.post(
            "/v1/responses", json={"model": "echo", "input": "q", "background": True}
        ).json()
        assert queued["status"] == "queued"
        reply = post_create(api, {"model": "echo", "input": "too many", "background": True})
        assert_error(
            reply,
            429,
            param=None,
            code="rate_limit_exceeded",
            check_param=False,
            type_=reply.json()["error"]["type"],
        )
        api.stored = 2
        for rid in (queued["id"], running["id"]):
            assert api.http.post(f"/v1/responses/{rid}/cancel").status_code == 200
        api.check_unharmed()
    finally:
        api.close()
