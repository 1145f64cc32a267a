"""WebSocket mode's protocol details (docs/websocket.md): lanes, refused creates, bad messages,
steering's limits, a stored response that is a background one (replayed and cancelled over HTTP
while the socket streams it, running on when the socket goes away) and a store:false one that is
cancelled with its socket. Through the ``openai`` SDK's ``responses.connect()`` against the
in-process server; every event validated strictly."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from inprocess import InProcessServer, cli_settings
from starlette.testclient import TestClient

from outlast.server import create_app
from websocket_support import AGENT, EVENTS, last, text_of, until

WAIT = 30.0  # a generous deadline for what takes well under a second


@pytest.fixture
def ws(make_server: Callable[..., InProcessServer]) -> InProcessServer:
    return make_server(agent=AGENT)


def test_each_event_of_a_lane_carries_its_stream_id(ws: InProcessServer) -> None:
    with ws.client() as client, client.responses.connect() as connection:
        connection.response.create(model="echo", input="in a lane", stream_id="lane-1")
        events = list(until(connection, "response.completed", "error"))

    assert {event.stream_id for event in events} == {"lane-1"}
    assert events[-1].type == "response.completed"


def test_a_waiting_response_on_one_lane_does_not_hold_up_another(
    ws: InProcessServer, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    with ws.client() as client, client.responses.connect() as connection:
        connection.response.create(model="gated", input=f"wait gate={gate}", stream_id="slow")
        connection.response.create(model="echo", input="meanwhile", stream_id="fast")
        fast = [e for e in until(connection, "response.completed") if e.stream_id == "fast"]
        gate.touch()
        slow = last(connection, "response.completed")

    assert fast[-1].type == "response.completed"
    assert text_of(fast[-1].response) == "meanwhile"
    assert slow.stream_id == "slow"


def test_a_continuation_of_a_running_response_waits_for_it(
    ws: InProcessServer, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    with ws.client() as client, client.responses.connect() as connection:
        connection.response.create(model="gated", input=f"wait gate={gate}", stream_id="a")
        running = last(connection, "response.created")
        connection.response.create(
            model="conversation", input="next", previous_response_id=running.response.id,
            stream_id="b",
        )  # fmt: skip
        gate.touch()
        done = [e for e in until(connection, "response.completed") if e.stream_id == "b"]
        while not done:
            done = [e for e in until(connection, "response.completed") if e.stream_id == "b"]

    conversation = json.loads(text_of(done[-1].response))
    assert [part["text"] for item in conversation for part in item["content"]] == [
        f"wait gate={gate}", "first", "second", "third", "next",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("message", "param", "code"),
    [
        ({"type": "response.create", "model": "echo", "background": True}, "background",
         "unsupported_parameter"),
        ({"type": "response.create", "model": "echo", "generate": False}, "generate",
         "unsupported_value"),
        ({"type": "response.create", "input": "no model"}, "model", "missing_required_parameter"),
        ({"type": "response.create", "model": "echo", "bogus": 1}, "bogus", "unknown_parameter"),
        ({"type": "response.nonsense"}, "type", "invalid_value"),
    ],
)  # fmt: skip
def test_a_refused_message_gets_an_error_event_and_the_connection_goes_on(
    ws: InProcessServer, message: dict[str, Any], param: str, code: str
) -> None:
    with ws.client() as client, client.responses.connect() as connection:
        connection.send_raw(json.dumps(message))
        error = last(connection, "error")
        connection.response.create(model="echo", input="still here")
        after = last(connection, "response.completed", "error")

    assert error.status == 400
    assert (error.error.param, error.error.code) == (param, code)
    assert error.error.type == "invalid_request_error"
    assert after.type == "response.completed"


def test_a_message_that_is_not_json_gets_an_error_event(ws: InProcessServer) -> None:
    with ws.client() as client, client.responses.connect() as connection:
        connection.send_raw("{not json")
        error = last(connection, "error")

    assert error.error.code == "invalid_json"


def dumps(events: list[Any]) -> list[dict[str, Any]]:
    return [event.model_dump(exclude={"stream_id"}) for event in events]


def test_a_socket_response_is_a_background_one_replayed_over_http_while_the_socket_streams_it(
    ws: InProcessServer, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    with ws.client() as client, client.responses.connect() as connection:
        connection.response.create(model="gated", input=f"go gate={gate}")
        before = list(until(connection, "response.output_text.delta"))
        response_id = before[0].response.id
        # Over HTTP, while it runs: the events so far from the store, then live ones.
        replay = client.responses.retrieve(response_id, stream=True, timeout=WAIT)
        replayed = [next(replay) for _ in before]
        gate.touch()
        on_socket = before + list(until(connection, "response.completed"))
        replayed += list(replay)
        resumed = list(client.responses.retrieve(response_id, stream=True, starting_after=5))

    assert [e.type for e in on_socket][:3] == [
        "response.created", "response.queued", "response.in_progress",
    ]  # fmt: skip
    assert on_socket[0].response.background is True
    assert [e.sequence_number for e in on_socket] == list(range(len(on_socket)))
    # The same events, in the same order, with the same numbers, on both (the socket's are
    # the SDK's WebSocket types, which add the lane's stream_id).
    assert dumps(replayed) == dumps(on_socket)
    assert dumps(resumed) == dumps(on_socket[6:])
    assert text_of(replayed[-1].response) == "firstsecondthird"


def test_a_socket_response_is_cancelled_over_http_and_the_socket_goes_on(
    ws: InProcessServer, tmp_path: Path
) -> None:
    with ws.client() as client, client.responses.connect() as connection:
        connection.response.create(model="gated", input=f"never gate={tmp_path / 'gate'}")
        created = last(connection, "response.created")
        cancelled = client.responses.cancel(created.response.id)
        ended = last(connection, "response.completed", "response.failed", "response.incomplete")
        connection.response.create(model="echo", input="still here")
        after = last(connection, "response.completed", "error")

    assert cancelled.status == "cancelled"
    # The cancel event (docs/api.md): response.incomplete, its response cancelled.
    assert ended.type == "response.incomplete"
    assert ended.response.status == "cancelled"
    assert text_of(after.response) == "still here"


def test_a_dropped_socket_leaves_its_response_running_and_readable_over_http(
    ws: InProcessServer, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    with ws.client() as client:
        with client.responses.connect() as connection:
            connection.response.create(model="gated", input=f"go gate={gate}")
            seen = list(until(connection, "response.output_text.delta"))
        gate.touch()
        # What the socket missed, read over HTTP from the last event it got.
        rest = list(
            client.responses.retrieve(
                seen[0].response.id, stream=True, starting_after=seen[-1].sequence_number,
                timeout=WAIT,
            )
        )  # fmt: skip

    combined = seen + rest
    assert [e.sequence_number for e in combined] == list(range(len(combined)))
    assert rest[-1].type == "response.completed"
    assert text_of(rest[-1].response) == "firstsecondthird"


def test_a_dropped_socket_cancels_its_store_false_response(
    ws: InProcessServer, tmp_path: Path
) -> None:
    # Nothing could read a store:false response once its socket is gone: it is foreground
    # (background: false), and cancelled with its socket as a foreground HTTP stream is.
    with ws.client() as client, client.responses.connect() as connection:
        connection.response.create(model="gated", input=f"never gate={tmp_path / 'gate'}",
                                   store=False)  # fmt: skip
        created = last(connection, "response.created")
    assert created.response.background is False

    # The agent waits for a gate that never opens: the run ends only because it was cancelled.
    deadline = time.monotonic() + WAIT
    while httpx.get(f"{ws.url}/healthz", timeout=WAIT).json()["running"] != 0:
        assert time.monotonic() < deadline, "the store:false run outlived its socket"
        time.sleep(0.02)


def test_steering_refuses_input_beyond_the_pending_limit(
    make_server: Callable[..., InProcessServer], tmp_path: Path
) -> None:
    server = make_server("--max-pending-steers", "1", agent=AGENT)
    gate = tmp_path / "gate"
    with server.client() as client, client.responses.connect() as connection:
        connection.response.create(model="gated", input=f"go gate={gate}")
        created = last(connection, "response.created")
        target = created.response.id
        connection.response.steer(input="one", previous_response_id=target)
        accepted = last(connection, "response.steer.accepted", "response.steer.failed")
        connection.response.steer(input="two", previous_response_id=target)
        refused = last(connection, "response.steer.accepted", "response.steer.failed")
        gate.touch()
        last(connection, "response.incomplete")
        successor = last(connection, "response.completed")

    assert accepted.type == "response.steer.accepted"
    assert refused.type == "response.steer.failed"
    assert refused.error.code == "too_many_pending_steers"
    assert refused.steer.input == "two"
    assert json.loads(text_of(successor.response))[-1]["content"][0]["text"] == "one"


def test_a_steer_event_may_not_name_a_lane(ws: InProcessServer, tmp_path: Path) -> None:
    with ws.client() as client, client.responses.connect() as connection:
        connection.send_raw(
            json.dumps(
                {"type": "response.steer", "previous_response_id": "resp_x", "input": "hi",
                 "stream_id": "lane"}
            )
        )  # fmt: skip
        failed = last(connection, "response.steer.failed")

    assert failed.error.code == "invalid_input"
    assert failed.steer.id is None


def test_steering_input_of_a_response_that_fails_comes_back_failed(
    ws: InProcessServer, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    with ws.client() as client, client.responses.connect() as connection:
        connection.response.create(model="gated_fail", input=f"go gate={gate}")
        created = last(connection, "response.created")
        connection.response.steer(input="never applied", previous_response_id=created.response.id)
        accepted = last(connection, "response.steer.accepted")
        gate.touch()
        events = list(until(connection, "response.failed"))
        failed = last(connection, "response.steer.failed")

    # The run's error event comes in the WebSocket shape (details under "error"), with the
    # status and code Open Responses' WebSocketErrorEvent requires.
    errors = [e for e in events if e.type == "error"]
    assert [e.error.message for e in errors] == ["failed after the gate"]
    assert (errors[0].status, errors[0].error.code) == (500, "server_error")
    assert errors[0].sequence_number == events[-1].sequence_number - 1
    assert failed.error.code == "response_not_active"
    assert failed.steer.id == accepted.steer.id
    assert failed.steer.input[0].content[0].text == "never applied"


def test_pending_steering_input_goes_first_in_a_continuation_over_http_too(
    ws: InProcessServer, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    with ws.client() as client:
        with client.responses.connect() as connection:
            connection.response.create(model="tool", input=f"find gate={gate}")
            created = last(connection, "response.created")
            last(connection, "response.function_call_arguments.done")
            connection.response.steer(
                input="Queued first.", previous_response_id=created.response.id
            )
            last(connection, "response.steer.accepted")
            gate.touch()
            completed = last(connection, "response.completed")
            last(connection, "response.steer.pending")
        call = next(i for i in completed.response.output if i.type == "function_call")
        continued = client.responses.create(
            model="conversation",
            previous_response_id=created.response.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "42"}],
        )
        items = client.responses.input_items.list(continued.id, order="asc")

    conversation = json.loads(text_of(continued))
    assert conversation[-2]["content"][0]["text"] == "Queued first."
    assert conversation[-1]["type"] == "function_call_output"
    # The queued input is the continuation's own input, stored with it.
    assert [i.type for i in items.data] == ["message", "function_call_output"]


def test_under_a_server_without_the_direct_frame_path_events_go_through_asgi(
    tmp_path: Path,
) -> None:
    # Starlette's test client is an ASGI server of its own (not uvicorn's websockets-sansio
    # protocol), so every event goes out as one websocket.send.
    settings = cli_settings(["--db", f"sqlite:///{tmp_path / 'asgi.db'}", "--agent", AGENT])
    with TestClient(create_app(settings)) as http, http.websocket_connect("/v1/responses") as ws:
        ws.send_text(json.dumps({"type": "response.create", "model": "echo", "input": "a b c",
                                 "stream_id": "lane"}))  # fmt: skip
        events = [EVENTS.validate_json(ws.receive_text())]
        while events[-1].type != "response.completed":
            events.append(EVENTS.validate_json(ws.receive_text()))

    assert {event.stream_id for event in events} == {"lane"}
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "a b c"
