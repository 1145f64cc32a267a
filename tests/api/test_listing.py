"""``GET /v1/responses``: the caller's responses, paged (an outlast extension; OpenAI has none).

The answer is an OpenAI-style list, ``{"object": "list", "data": [Response…], "first_id",
"last_id", "has_more", "ended_at"}`` (``ended_at``: when each ended one did), ordered by creation
(``order=desc``, newest first, by default), paged
with ``after`` (the last id of the previous page) and ``limit`` (1 to 100, default 20), filtered
by ``status``. It lists only the caller's own responses, and never a ``store: false`` one or a
deleted one. Bad parameters get the OpenAI error envelope. Runs on every backend.

Each backend has one in-process server the tests share, accepting a pool of API keys; each test
lists with keys of its own (``key_a``, ``key_b``), so its listings hold only what it created.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from inprocess import BACKENDS, InProcessServer, ServerPool, fresh_key
from openai import OpenAI
from openai.pagination import SyncCursorPage
from openai.types.responses import Response

from helpers import wait_until
from outlast.client import OutlastClient

pytestmark = pytest.mark.parametrize("backend", BACKENDS)


@pytest.fixture
def keyed_server(servers: ServerPool, backend: str) -> InProcessServer:
    """The backend's shared server accepting every key of the pool."""
    return servers.keyed(backend)


@pytest.fixture
def key_a() -> str:
    return fresh_key()


@pytest.fixture
def key_b() -> str:
    return fresh_key()


@pytest.fixture
def client_a(keyed_server: InProcessServer, key_a: str) -> Iterator[OpenAI]:
    with keyed_server.client(api_key=key_a) as c:
        yield c


def listing(server: InProcessServer, key: str, **params: Any) -> httpx.Response:
    return httpx.get(
        f"{server.base_url}/responses",
        params=params,
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )


def page(server: InProcessServer, key: str, **params: Any) -> dict[str, Any]:
    reply = listing(server, key, **params)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    assert set(body) == {"object", "data", "first_id", "last_id", "has_more", "ended_at"}
    assert body["object"] == "list"
    for item in body["data"]:
        Response.model_validate(item, strict=False)
    ids = [item["id"] for item in body["data"]]
    assert body["first_id"] == (ids[0] if ids else None)
    assert body["last_id"] == (ids[-1] if ids else None)
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [item["id"] for item in body["data"]]


def finished(client: OpenAI, model: str, prompt: str) -> Response:
    created = client.responses.create(model=model, input=prompt, background=True)
    wait_until(
        lambda: client.responses.retrieve(created.id).status not in ("queued", "in_progress"),
        f"{created.id} ended",
    )
    return client.responses.retrieve(created.id)


def make_runs(client: OpenAI, count: int) -> list[str]:
    """``count`` finished responses, in creation order."""
    return [finished(client, "echo", f"run {i}").id for i in range(count)]


def test_lists_the_callers_responses_newest_first_by_default(
    keyed_server: InProcessServer, client_a: OpenAI, key_a: str
) -> None:
    created = make_runs(client_a, 3)
    body = page(keyed_server, key_a)
    assert ids(body) == created[::-1]
    assert body["has_more"] is False
    assert [item["output"][0]["content"][0]["text"] for item in body["data"]] == [
        "run 2", "run 1", "run 0",
    ]  # fmt: skip
    assert ids(page(keyed_server, key_a, order="asc")) == created


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_pages_follow_each_other_without_gap_or_overlap(
    keyed_server: InProcessServer, client_a: OpenAI, key_a: str, order: str
) -> None:
    created = make_runs(client_a, 5)
    expected = created if order == "asc" else created[::-1]
    first = page(keyed_server, key_a, limit=2, order=order)
    second = page(keyed_server, key_a, limit=2, order=order, after=first["last_id"])
    third = page(keyed_server, key_a, limit=2, order=order, after=second["last_id"])
    assert [first["has_more"], second["has_more"], third["has_more"]] == [True, True, False]
    assert ids(first) + ids(second) + ids(third) == expected
    # A page that ends exactly at the last response says there is no more.
    assert page(keyed_server, key_a, limit=5, order=order)["has_more"] is False
    assert page(keyed_server, key_a, limit=4, order=order)["has_more"] is True
    last = page(keyed_server, key_a, order=order, after=expected[-1])
    assert last["data"] == [] and last["has_more"] is False


def test_the_status_filter_keeps_only_runs_in_that_state(
    keyed_server: InProcessServer, client_a: OpenAI, key_a: str
) -> None:
    done = finished(client_a, "echo", "fine")
    failed = finished(client_a, "fail", "broken")
    running = client_a.responses.create(model="block", input="hold", background=True)
    wait_until(lambda: client_a.responses.retrieve(running.id).status == "in_progress", "it runs")
    assert ids(page(keyed_server, key_a, status="completed")) == [done.id]
    assert ids(page(keyed_server, key_a, status="failed")) == [failed.id]
    assert ids(page(keyed_server, key_a, status="cancelled")) == []
    live = page(keyed_server, key_a, status="in_progress")
    assert ids(live) == [running.id]
    # A running response is listed as GET shows it: its output so far.
    assert live["data"][0]["output"][0]["content"][0]["text"] == "waiting "
    client_a.responses.cancel(running.id)
    assert ids(page(keyed_server, key_a, status="cancelled")) == [running.id]
    # A cursor need not match the filter: it is only a position.
    assert ids(page(keyed_server, key_a, status="completed", order="asc", after=failed.id)) == []
    assert ids(page(keyed_server, key_a, status="failed", order="desc", after=running.id)) == [
        failed.id
    ]


def test_each_key_lists_only_its_own_responses(
    keyed_server: InProcessServer, client_a: OpenAI, key_a: str, key_b: str
) -> None:
    mine = make_runs(client_a, 2)
    with keyed_server.client(api_key=key_b) as client_b:
        theirs = make_runs(client_b, 1)
    assert ids(page(keyed_server, key_a)) == mine[::-1]
    assert ids(page(keyed_server, key_b)) == theirs
    # Another key's id is no cursor either: for this key it does not exist.
    reply = listing(keyed_server, key_b, after=mine[0])
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "after"
    assert listing(keyed_server, "wrong-key").status_code == 401


def test_unstored_and_deleted_responses_are_not_listed(
    keyed_server: InProcessServer, client_a: OpenAI, key_a: str
) -> None:
    kept, deleted = make_runs(client_a, 2)
    unstored = client_a.responses.create(model="echo", input="forget me", store=False)
    assert unstored.status == "completed"
    client_a.responses.delete(deleted)
    assert ids(page(keyed_server, key_a)) == [kept]


BAD_PARAMETERS = [
    ({"limit": "0"}, "limit"),
    ({"limit": "101"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"limit": "-1"}, "limit"),
    ({"order": "newest"}, "order"),
    ({"status": "done"}, "status"),
    ({"after": "resp_unknown"}, "after"),
    ({"after": ""}, "after"),
]


def test_bad_parameters_get_the_openai_error_envelope(
    keyed_server: InProcessServer, key_a: str
) -> None:
    for params, param in BAD_PARAMETERS:
        reply = listing(keyed_server, key_a, **params)
        assert reply.status_code == 400, (params, reply.text)
        error = reply.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["type"] == "invalid_request_error"
        assert error["param"] == param, params
        assert isinstance(error["message"], str) and error["message"]


def test_the_sdk_pages_through_the_listing_and_the_client_wraps_it(
    keyed_server: InProcessServer, client_a: OpenAI
) -> None:
    created = make_runs(client_a, 5)
    # The SDK's own cursor page (``after`` = the last id) walks every page, strictly validated.
    walked = client_a.get_api_list(
        "/responses",
        model=Response,
        page=SyncCursorPage[Response],
        options={"params": {"limit": 2, "order": "asc"}},
    )
    assert [r.id for r in walked] == created
    with OutlastClient(openai_client=client_a) as outlast_client:
        first = outlast_client.list_responses(limit=2)
        assert [r.id for r in first.data] == created[::-1][:2]
        assert [r.id for r in outlast_client.list_responses(limit=2)] == created[::-1]
        assert [r.id for r in outlast_client.list_responses(status="failed")] == []


def test_the_openapi_document_describes_the_listing(keyed_server: InProcessServer) -> None:
    document = httpx.get(f"{keyed_server.url}/openapi.json", timeout=10).json()
    operation = document["paths"]["/v1/responses"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"after", "limit", "order", "status"}
    assert "outlast extension" in operation["summary"]
