"""The web console's server side: its page and files, and its two reads under ``/v1/console/``.

The page and its files load without a key (they hold no data) and carry a strict
Content-Security-Policy and the other headers that keep agent output from running script or the
page from being framed; ``/`` redirects to the page. ``/v1/console/overview`` and
``/v1/console/runs`` are keyed like every ``/v1/`` route and see only the caller's responses: the
overview counts them per status and per minute ended, the runs read gives what the response
object has no field for (replica, attempt, events, the beginning of the input). Runs on every
backend where a store read is involved; each test uses keys of its own.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
import pytest
from inprocess import BACKENDS, InProcessServer, ServerPool, fresh_key

from a2a_support import rpc, rpc_message
from helpers import wait_until

TERMINAL = {"completed", "failed", "cancelled", "incomplete"}


@pytest.fixture
def keyed_server(servers: ServerPool, backend: str) -> InProcessServer:
    return servers.keyed(backend)


def call(
    server: InProcessServer, key: str | None, method: str, path: str, **kw: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.request(method, f"{server.url}{path}", headers=headers, timeout=10, **kw)


def create(server: InProcessServer, key: str, model: str, text: str) -> str:
    reply = call(
        server, key, "POST", "/v1/responses",
        json={"model": model, "input": text, "background": True},
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    response_id: str = reply.json()["id"]
    return response_id


def wait_ended(server: InProcessServer, key: str, response_id: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def ended() -> bool:
        seen.update(call(server, key, "GET", f"/v1/responses/{response_id}").json())
        return seen.get("status") in TERMINAL

    wait_until(ended, f"{response_id} ended")
    return seen


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_overview_counts_the_callers_runs_per_status_and_per_minute_ended(
    keyed_server: InProcessServer,
) -> None:
    key, other = fresh_key(), fresh_key()
    ids = [create(keyed_server, key, "count", "n=2"), create(keyed_server, key, "count", "n=3")]
    ids.append(create(keyed_server, key, "fail", "boom"))
    for response_id in ids:
        wait_ended(keyed_server, key, response_id)

    # The overview reads the store, which records a run's end a moment after the run's state.
    overview: dict[str, Any] = {}

    def counted() -> bool:
        overview.update(call(keyed_server, key, "GET", "/v1/console/overview").json())
        return bool(overview["counts"] == {"completed": 2, "failed": 1})

    wait_until(counted, "the overview counted the three runs")
    assert overview["object"] == "console.overview"
    assert (overview["running"], overview["queued"]) == (0, 0)
    assert len(overview["throughput"]["ended"]) == 15
    assert sum(overview["throughput"]["ended"]) == 3
    assert overview["throughput"]["ended"][-1] >= 1  # the newest minute is the last bucket
    assert overview["server"]["max_running"] >= 1
    empty = call(keyed_server, other, "GET", "/v1/console/overview").json()
    assert empty["counts"] == {} and sum(empty["throughput"]["ended"]) == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_runs_read_gives_events_attempt_and_input_preview_of_the_callers_runs_only(
    keyed_server: InProcessServer,
) -> None:
    key, other = fresh_key(), fresh_key()
    response_id = create(keyed_server, key, "count", "n=4   and  some\ntext")
    wait_ended(keyed_server, key, response_id)
    stream = call(keyed_server, key, "GET", f"/v1/responses/{response_id}?stream=true")
    events = [
        line
        for line in stream.text.splitlines()
        if line.startswith("data:") and line != "data: [DONE]"  # the end, not an event
    ]

    reply = call(keyed_server, key, "GET", f"/v1/console/runs?ids={response_id},resp_nothing")

    assert reply.status_code == 200
    [run] = reply.json()["data"]
    assert run["id"] == response_id and run["status"] == "completed"
    assert run["events"] == len(events)
    assert run["attempt"] == 1 and run["background"] is True and run["ended_at"] is not None
    assert run["input_preview"] == "n=4 and some text"
    assert run["steerable"] is False  # it has ended
    # The replica that ran it: on PostgreSQL this server's worker id, on SQLite none.
    assert run["worker"] == call(keyed_server, None, "GET", "/healthz").json()["worker"]
    theirs = call(keyed_server, other, "GET", f"/v1/console/runs?ids={response_id}")
    assert theirs.json()["data"] == []


@pytest.mark.parametrize("ids", ["", ",", ",".join(f"resp_{i}" for i in range(101))])
def test_the_runs_read_refuses_no_ids_or_more_than_a_page(
    server: InProcessServer, ids: str
) -> None:
    reply = call(server, None, "GET", f"/v1/console/runs?ids={ids}")
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "ids"


@pytest.mark.parametrize("path", ["/v1/console/overview", "/v1/console/runs?ids=resp_x"])
def test_the_consoles_reads_need_a_valid_key_like_every_v1_route(
    servers: ServerPool, path: str
) -> None:
    keyed = servers.keyed()
    for key in (None, "not-a-key"):
        reply = call(keyed, key, "GET", path)
        assert reply.status_code == 401
        assert reply.json()["error"]["code"] == "invalid_api_key"
    assert call(keyed, fresh_key(), "GET", path).status_code == 200


@pytest.mark.parametrize(
    "path", ["/console", "/console/", "/console/static/app.js", "/console/static/app.css"]
)
def test_the_console_loads_without_a_key_with_strict_security_headers(
    servers: ServerPool, path: str
) -> None:
    reply = call(servers.keyed(), None, "GET", path)

    assert reply.status_code == 200
    policy = reply.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["referrer-policy"] == "no-referrer"
    assert reply.headers["x-frame-options"] == "DENY"
    suffix = PurePosixPath(path).suffix
    expected = {".js": "text/javascript", ".css": "text/css"}.get(suffix, "text/html")
    assert reply.headers["content-type"].startswith(expected)


def test_the_page_runs_no_inline_script(server: InProcessServer) -> None:
    page = call(server, None, "GET", "/console").text
    assert '<script type="module" src="/console/static/app.js"></script>' in page
    assert page.count("<script") == 1
    assert not re.search(r"\son[a-z]+\s*=", page), "no inline event handler attributes"


def test_the_root_redirects_to_the_console(server: InProcessServer) -> None:
    reply = call(server, None, "GET", "/", follow_redirects=False)
    assert reply.status_code == 307
    assert reply.headers["location"] == "/console"


@pytest.mark.parametrize("name", ["nothing.js", "..%2Fapi.py", "__init__.py"])
def test_only_the_consoles_own_files_are_served(server: InProcessServer, name: str) -> None:
    reply = call(server, None, "GET", f"/console/static/{name}")
    assert reply.status_code == 404
    assert "error" in reply.json()


def test_without_the_console_its_routes_are_not_served(make_server: Any) -> None:
    server = make_server("--no-console")
    for path in ("/", "/console", "/console/static/app.js", "/v1/console/overview"):
        assert call(server, None, "GET", path, follow_redirects=False).status_code == 404
    assert call(server, None, "GET", "/v1/responses").status_code == 200


def test_an_a2a_task_is_a_run_the_console_lists_and_counts(servers: ServerPool) -> None:
    keyed, key = servers.keyed(), fresh_key()
    answer = rpc(
        keyed,
        {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": rpc_message("hello a2a")},
        {"Authorization": f"Bearer {key}"},
    )
    task_id = answer["result"]["task"]["id"]

    listing = call(keyed, key, "GET", "/v1/responses").json()
    assert [r["id"] for r in listing["data"]] == [task_id]
    [run] = call(keyed, key, "GET", f"/v1/console/runs?ids={task_id}").json()["data"]
    assert run["input_preview"] == "hello a2a"
    wait_until(
        lambda: (
            call(keyed, key, "GET", "/v1/console/overview").json()["counts"] == {"completed": 1}
        ),
        "the overview counted the task",
    )


def test_a_running_response_is_steered_and_continued_by_a_successor_with_the_input(
    servers: ServerPool, tmp_path: Path
) -> None:
    steering, key = servers.keyed(agent="steering_agents:router"), fresh_key()
    gate = tmp_path / "gate"
    response_id = create(steering, key, "gated", f"gate={gate}")
    wait_until(
        lambda: call(steering, key, "GET", f"/v1/responses/{response_id}").json()["output"] != [],
        "the first message",
    )

    [run] = call(steering, key, "GET", f"/v1/console/runs?ids={response_id}").json()["data"]
    assert run["steerable"] is True

    reply = call(steering, key, "POST", f"/v1/console/runs/{response_id}/steer",
                 json={"input": "also cover the costs"})  # fmt: skip
    assert reply.status_code == 200, reply.text
    accepted = reply.json()
    assert accepted["object"] == "console.steer" and accepted["id"].startswith("steer_")
    assert accepted["previous_response_id"] == response_id
    gate.touch()

    steered = wait_ended(steering, key, response_id)
    assert steered["status"] == "incomplete"
    assert steered["incomplete_details"] == {"reason": "steered"}
    successors: list[dict[str, Any]] = []

    def continued() -> bool:
        listing = call(steering, key, "GET", "/v1/responses?limit=100").json()["data"]
        successors[:] = [r for r in listing if r["previous_response_id"] == response_id]
        return bool(successors)

    wait_until(continued, "the successor started")
    successor = wait_ended(steering, key, successors[0]["id"])
    assert successor["status"] == "completed" and successor["background"] is True
    assert "also cover the costs" in output_text(successor)  # the agent echoes its input


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"input": ""}, 400, "invalid_value"),
        ({"input": ["not", "text"]}, 400, "invalid_value"),
        ({"text": "no input"}, 400, "invalid_value"),
    ],
)
def test_a_steer_without_text_is_refused(
    servers: ServerPool, body: dict[str, Any], status: int, code: str
) -> None:
    keyed, key = servers.keyed(), fresh_key()
    response_id = create(keyed, key, "count", "n=1")
    reply = call(keyed, key, "POST", f"/v1/console/runs/{response_id}/steer", json=body)
    assert reply.status_code == status
    assert reply.json()["error"]["code"] == code and reply.json()["error"]["param"] == "input"


def test_an_ended_or_unknown_response_cannot_be_steered(servers: ServerPool) -> None:
    keyed, key, other = servers.keyed(), fresh_key(), fresh_key()
    response_id = create(keyed, key, "count", "n=1")
    wait_ended(keyed, key, response_id)
    body = {"input": "too late"}

    ended = call(keyed, key, "POST", f"/v1/console/runs/{response_id}/steer", json=body)
    assert ended.status_code == 409
    assert ended.json()["error"]["code"] == "response_already_completed"
    for owner, target in ((other, response_id), (key, "resp_nothing")):
        missing = call(keyed, owner, "POST", f"/v1/console/runs/{target}/steer", json=body)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "response_not_found"


def output_text(response: dict[str, Any]) -> str:
    return "".join(
        part["text"]
        for item in response["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )
