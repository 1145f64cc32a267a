"""WebSocket mode and steering through the unmodified ``openai`` SDK's ``responses.connect()``,
against a real ``outlast serve`` on each backend (docs/websocket.md).

Every server event is validated strictly against the SDK's ``ResponsesServerEvent`` union; the
responses a socket creates are read back over HTTP, where they are like any other.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from serverproc import ServerProcess
from websocket_support import AGENT, EVENTS, last, text_of, until


@pytest.fixture
def ws_server(make_server: Callable[..., ServerProcess]) -> ServerProcess:
    return make_server(agent=AGENT).start()


def test_one_socket_carries_several_responses_one_after_another(ws_server: ServerProcess) -> None:
    with ws_server.client() as client, client.responses.connect() as connection:
        connection.response.create(model="echo", input="one two three")
        first = list(until(connection, "response.completed", "error"))
        connection.response.create(model="echo", input="four five")
        second = list(until(connection, "response.completed", "error"))

    # A stored response created over a socket is a background one (docs/websocket.md).
    assert [e.type for e in first][:3] == [
        "response.created", "response.queued", "response.in_progress",
    ]  # fmt: skip
    deltas = [e.delta for e in first if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "one two three"
    assert [e.sequence_number for e in first] == list(range(len(first)))
    assert first[-1].type == second[-1].type == "response.completed"
    assert text_of(second[-1].response) == "four five"
    assert first[-1].response.background is True
    assert first[-1].response.id != second[-1].response.id


def test_a_socket_response_is_stored_and_read_over_http_like_any_other(
    ws_server: ServerProcess,
) -> None:
    with ws_server.client() as client:
        with client.responses.connect() as connection:
            connection.response.create(model="echo", input="kept for later", metadata={"k": "v"})
            events = list(until(connection, "response.completed", "error"))
        done = events[-1]
        got = client.responses.retrieve(done.response.id)
        items = client.responses.input_items.list(done.response.id)
        replayed = list(client.responses.retrieve(done.response.id, stream=True))
        resumed = list(client.responses.retrieve(done.response.id, stream=True, starting_after=2))

    # Its events replay over HTTP as they were sent on the socket.
    on_socket = [e.model_dump(exclude={"stream_id"}) for e in events]
    assert [e.model_dump() for e in replayed] == on_socket
    assert [e.model_dump() for e in resumed] == on_socket[3:]
    assert got.status == "completed"
    assert text_of(got) == "kept for later"
    assert got.metadata == {"k": "v"}
    assert [i.content[0].text for i in items.data] == ["kept for later"]  # type: ignore[union-attr,index]


def test_a_socket_response_is_cancelled_over_http(ws_server: ServerProcess, tmp_path: Path) -> None:
    with ws_server.client() as client, client.responses.connect() as connection:
        connection.response.create(model="gated", input=f"never gate={tmp_path / 'gate'}")
        created = last(connection, "response.created")
        cancelled = client.responses.cancel(created.response.id)
        ended = last(connection, "response.completed", "response.failed", "response.incomplete")
        got = client.responses.retrieve(created.response.id)

    assert cancelled.status == got.status == "cancelled"
    assert (ended.type, ended.response.status) == ("response.incomplete", "cancelled")


def test_previous_response_id_continues_stored_and_store_false_responses(
    ws_server: ServerProcess,
) -> None:
    with ws_server.client() as client, client.responses.connect() as connection:
        connection.response.create(model="echo", input="alpha")
        stored = last(connection, "response.completed", "error").response
        connection.response.create(
            model="echo", input="beta", previous_response_id=stored.id, store=False
        )
        private = last(connection, "response.completed", "error").response
        connection.response.create(
            model="conversation", input="gamma", previous_response_id=private.id
        )
        seen = last(connection, "response.completed", "error").response

    assert private.store is False
    texts = [part["text"] for item in json.loads(text_of(seen)) for part in item.get("content", [])]
    assert texts == ["alpha", "alpha", "beta", "beta", "gamma"]


def test_a_store_false_response_is_not_found_on_another_connection(
    ws_server: ServerProcess,
) -> None:
    with ws_server.client() as client:
        with client.responses.connect() as connection:
            connection.response.create(model="echo", input="secret", store=False)
            private = last(connection, "response.completed", "error").response
        with client.responses.connect() as connection:
            connection.response.create(model="echo", input="again", previous_response_id=private.id)
            error = last(connection, "response.completed", "error")
            # The connection stays usable after an error.
            connection.response.create(model="echo", input="fresh start")
            after = last(connection, "response.completed", "error")

    assert error.type == "error"
    assert error.status == 400
    assert error.error.code == "previous_response_not_found"
    assert error.error.param == "previous_response_id"
    assert after.type == "response.completed"


def test_the_async_client_connects_too(ws_server: ServerProcess) -> None:
    async def main() -> list[str]:
        types: list[str] = []
        async with ws_server.async_client() as client, client.responses.connect() as connection:
            await connection.response.create(model="echo", input="async hello")
            async for event in connection:
                types.append(event.type)
                if event.type == "response.completed":
                    break
        return types

    types = asyncio.run(main())
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    assert "response.output_text.delta" in types


def test_the_api_key_is_checked_at_the_upgrade(make_server: Callable[..., ServerProcess]) -> None:
    server = make_server(agent=AGENT, args=["--api-key", "right-key"]).start()
    with server.client(api_key="wrong-key") as client:
        connecting = client.responses.connect()
        with pytest.raises(InvalidStatus) as refused:
            connecting.enter()
    with server.client(api_key="right-key") as client, client.responses.connect() as connection:
        connection.response.create(model="echo", input="let in")
        done = last(connection, "response.completed", "error")

    assert refused.value.response.status_code == 401
    assert b"invalid_api_key" in refused.value.response.body
    assert done.type == "response.completed"


def test_at_its_limit_the_connection_closes_and_the_sdk_reconnects_without_loss(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(agent=AGENT, args=["--websocket-connection-limit", "1"]).start()

    async def main() -> tuple[list[Any], Any]:
        reconnecting = asyncio.Event()
        seen: asyncio.Queue[Any] = asyncio.Queue()

        def on_reconnecting(event: Any) -> None:
            reconnecting.set()

        async with (
            server.async_client() as client,
            client.responses.connect(
                on_reconnecting=on_reconnecting, initial_delay=0.05
            ) as connection,
        ):

            async def read() -> None:
                # The SDK's own iteration, which reconnects (validated again, strictly).
                async for event in connection:
                    await seen.put(EVENTS.validate_python(event.to_dict()))

            reader = asyncio.create_task(read())
            await connection.response.create(model="echo", input="before the limit")
            events = [await seen.get()]
            while events[-1].type != "error":
                events.append(await seen.get())
            await reconnecting.wait()
            # Sent while the SDK reconnects (queued, then flushed) or just after: either way
            # it reaches the new connection, and continues the response of the old one.
            previous = next(e for e in events if e.type == "response.completed").response
            await connection.response.create(
                model="conversation", input="after", previous_response_id=previous.id
            )
            event = await seen.get()
            while event.type != "response.completed":
                event = await seen.get()
            reader.cancel()
            return events, event

    events, continued = asyncio.run(main())
    assert events[-1].error.code == "websocket_connection_limit_reached"
    assert "response.completed" in [e.type for e in events]
    texts = [
        part["text"]
        for item in json.loads(text_of(continued.response))
        for part in item.get("content", [])
    ]
    assert texts == ["before the limit", "before the limit", "after"]


# -- steering --------------------------------------------------------------------------------


def test_steering_ends_the_response_at_a_boundary_and_a_successor_carries_the_input(
    ws_server: ServerProcess, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    with ws_server.client() as client:
        with client.responses.connect() as connection:
            connection.response.create(model="gated", input=f"go gate={gate}")
            created = last(connection, "response.created")
            last(connection, "response.output_text.delta")  # "first" is out
            connection.response.steer(
                input="Please also mention the weather.",
                previous_response_id=created.response.id,
            )
            accepted = last(connection, "response.steer.accepted")
            gate.touch()
            ended = last(connection, "response.incomplete", "response.completed")
            successor = last(connection, "response.created")
            done = last(connection, "response.completed", "error")
        parent = client.responses.retrieve(created.response.id)
        stored = client.responses.retrieve(done.response.id)

    assert accepted.steer.previous_response_id == created.response.id
    assert accepted.steer.id
    assert ended.type == "response.incomplete"
    assert ended.response.incomplete_details.reason == "steered"
    # It ended before its second message: "first" is its output, completed.
    assert text_of(ended.response) == "first"
    assert [item.status for item in ended.response.output] == ["completed"]
    assert successor.response.previous_response_id == created.response.id
    assert done.response.id == successor.response.id
    newest = json.loads(text_of(done.response))[-1]
    assert newest["role"] == "user"
    assert newest["content"][0]["text"] == "Please also mention the weather."
    assert parent.status == "incomplete"
    assert parent.incomplete_details.reason == "steered"  # type: ignore[union-attr]
    assert stored.status == "completed"
    assert stored.previous_response_id == created.response.id


def test_steering_a_response_waiting_for_tool_output_stays_pending_and_survives_a_restart(
    ws_server: ServerProcess, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    with ws_server.client() as client, client.responses.connect() as connection:
        connection.response.create(model="tool", input=f"find x gate={gate}")
        created = last(connection, "response.created")
        last(connection, "response.function_call_arguments.done")
        connection.response.steer(input="And be brief.", previous_response_id=created.response.id)
        accepted = last(connection, "response.steer.accepted")
        gate.touch()
        completed = last(connection, "response.completed")
        pending = last(connection, "response.steer.pending")

    ws_server.stop()
    ws_server.start()

    call = next(item for item in completed.response.output if item.type == "function_call")
    with ws_server.client() as client, client.responses.connect() as connection:
        connection.response.create(
            model="conversation",
            previous_response_id=created.response.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "42"}],
        )
        done = last(connection, "response.completed", "error")

    assert pending.steer.id == accepted.steer.id
    assert pending.reason == "waiting_for_required_input"
    assert [(s.type, s.call_id, s.name) for s in pending.required_input] == [
        ("function_call_output", call.call_id, "lookup")
    ]
    assert done.type == "response.completed"
    conversation = json.loads(text_of(done.response))
    # The queued steering input comes first in the continuation's input, then the tool output.
    assert conversation[-2]["content"][0]["text"] == "And be brief."
    assert conversation[-1]["type"] == "function_call_output"


def test_steering_failures_carry_the_sdks_error_codes(
    ws_server: ServerProcess, tmp_path: Path
) -> None:
    with ws_server.client() as client, client.responses.connect() as connection:
        connection.response.create(model="echo", input="quick")
        done = last(connection, "response.completed")
        connection.response.steer(input="too late", previous_response_id=done.response.id)
        late = last(connection, "response.steer.failed")
        connection.response.steer(input="whose?", previous_response_id="resp_unknown")
        unknown = last(connection, "response.steer.failed")
        connection.send_raw(
            json.dumps(
                {
                    "type": "response.steer",
                    "previous_response_id": done.response.id,
                    # Valid for the SDK's type, refused by steering: only user messages.
                    "input": [{"type": "function_call_output", "call_id": "c1", "output": "x"}],
                }
            )
        )
        invalid = last(connection, "response.steer.failed")

    assert late.error.code == "response_already_completed"
    assert late.steer.input == "too late"
    assert unknown.error.code == "response_not_found"
    assert invalid.error.code == "invalid_input"
    assert invalid.steer.id is None


def test_across_a_server_restart_the_sdk_reconnects_and_continues(
    ws_server: ServerProcess,
) -> None:
    async def main() -> tuple[list[int], Any]:
        codes: list[int] = []
        seen: asyncio.Queue[Any] = asyncio.Queue()

        def on_reconnecting(event: Any) -> None:
            codes.append(event.close_code)

        async with (
            ws_server.async_client() as client,
            client.responses.connect(
                on_reconnecting=on_reconnecting, initial_delay=0.2, max_delay=1.0, max_retries=30
            ) as connection,
        ):

            async def read() -> None:
                async for event in connection:
                    await seen.put(EVENTS.validate_python(event.to_dict()))

            async def completed() -> Any:
                event = await seen.get()
                while event.type not in ("response.completed", "error"):
                    event = await seen.get()
                return event

            reader = asyncio.create_task(read())
            await connection.response.create(model="echo", input="before the restart")
            before = await completed()
            await asyncio.to_thread(ws_server.stop)
            await asyncio.to_thread(ws_server.start)
            # Sent while the SDK reconnects (it queues it) or once it has: it reaches the
            # restarted server either way.
            await connection.response.create(
                model="conversation", input="after", previous_response_id=before.response.id
            )
            after = await completed()
            reader.cancel()
            return codes, after

    codes, after = asyncio.run(main())
    assert codes[0] == 1012  # service restart: a code the SDK reconnects after
    assert after.type == "response.completed"
    texts = [
        part["text"] for item in json.loads(text_of(after.response)) for part in item["content"]
    ]
    assert texts == ["before the restart", "before the restart", "after"]
