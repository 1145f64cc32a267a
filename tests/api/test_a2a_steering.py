"""Steering over A2A: a message to a task whose run is working steers that run, with the
Responses API's steering semantics (docs/a2a.md#steering-a-working-task).

The test agents (``steerable``, ``steer_tool``, ``steer_fail`` in tests/support/a2a_agents.py)
wait for a gate file at a known point, so each test steers them there without timing: it sends
the message, sees it accepted (the task's history holds it), then creates the file. Through
a2a-sdk's client, on the in-process shared server, over JSON-RPC and HTTP+JSON, on both
backends where the task index is involved.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from a2a.client import Client
from a2a.types import (
    Message,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    StreamResponse,
    SubscribeToTaskRequest,
    Task,
    TaskState,
)
from a2a.utils.errors import A2AError, UnsupportedOperationError
from google.protobuf.json_format import MessageToDict
from inprocess import A2A_ROUTER, BACKENDS, InProcessServer, ServerPool

from a2a_support import (
    GRPC,
    JSONRPC,
    REST,
    TERMINAL,
    Receiver,
    Text,
    answer,
    artifact_text,
    request,
    send,
    state,
    task_of,
    until_final,
    user_message,
    wait_for_task,
    wait_for_tool_call,
)
from a2a_support import a2a_client as support_client
from databases import fresh_database
from serverproc import free_port

BINDINGS = [JSONRPC, REST]
WORKING = TaskState.TASK_STATE_WORKING
COMPLETED = TaskState.TASK_STATE_COMPLETED
INPUT_REQUIRED = TaskState.TASK_STATE_INPUT_REQUIRED
FAILED = TaskState.TASK_STATE_FAILED


@pytest.fixture
def server(servers: ServerPool, backend: str) -> InProcessServer:
    return servers.shared(backend, A2A_ROUTER)


def a2a_client(
    server: InProcessServer, binding: str = JSONRPC, *, streaming: bool = False
) -> contextlib.AbstractAsyncContextManager[Client]:
    return support_client(server, binding, api_key=server.default_key, streaming=streaming)


def steering(task_id: str, text: str, *, return_immediately: bool = False) -> SendMessageRequest:
    """A SendMessage to the task ``task_id`` (working: it steers the task's run)."""
    return SendMessageRequest(
        message=user_message(text, task_id=task_id),
        configuration=SendMessageConfiguration(return_immediately=return_immediately),
    )


async def working(client: Client, agent: str, gate: Path, text: str = "first") -> Task:
    """A task of ``agent`` whose run waits at its gate, having produced ``text``."""
    task = await send(client, request(f"plan it gate={gate}", model=agent, return_immediately=True))
    return await wait_for_task(
        client, task.id, lambda t: artifact_text(t).startswith(text), f"{text!r} is produced"
    )


def has_message(task: Task, message: Message) -> bool:
    return any(m.message_id == message.message_id for m in task.history)


def user_texts(task: Task) -> list[str]:
    return [m.parts[0].text for m in task.history if m.role == Role.ROLE_USER]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_message_to_a_working_task_steers_its_run_and_the_task_goes_on(
    server: InProcessServer, binding: str, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    async with a2a_client(server, binding) as client:
        task = await working(client, "steerable", gate)
        req = steering(task.id, "also the costs", return_immediately=True)
        accepted = await send(client, req)
        # Accepted: the same task, still working, its history ending with the message.
        assert (accepted.id, accepted.status.state) == (task.id, WORKING)
        assert accepted.history[-1].message_id == req.message.message_id
        assert accepted.history[-1].task_id == task.id
        gate.touch()
        done = await wait_for_task(client, task.id, lambda t: t.status.state in TERMINAL, "end")
    assert done.status.state == COMPLETED
    # The run ended at its next safe boundary (before "second"); the successor saw the whole
    # conversation, the steering input last.
    assert artifact_text(done) == "first" + "saw: plan it gate=" + str(gate) + " | also the costs"
    assert user_texts(done) == [f"plan it gate={gate}", "also the costs"]
    assert [m.message_id for m in done.history].count(req.message.message_id) == 1


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_blocking_steer_answers_with_the_task_at_its_end(
    server: InProcessServer, binding: str, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    async with a2a_client(server, binding) as client:
        task = await working(client, "steerable", gate)
        req = steering(task.id, "shorter, please")
        sending = asyncio.ensure_future(send(client, req))
        await wait_for_task(
            client, task.id, lambda t: has_message(t, req.message), "the message is accepted"
        )
        assert not sending.done()  # it waits for the task's end, across the steered turn
        gate.touch()
        done = await sending
    assert (done.id, done.status.state) == (task.id, COMPLETED)
    assert artifact_text(done).endswith("| shorter, please")


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("binding", BINDINGS)
async def test_streams_follow_a_steered_task_into_its_next_turn(
    server: InProcessServer, binding: str, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    async with (
        a2a_client(server, binding, streaming=True) as client,
        a2a_client(server, binding, streaming=True) as steerer,
    ):
        original = client.send_message(request(f"plan it gate={gate}", model="steerable"))
        first: list[StreamResponse] = []
        async for event in original:
            first.append(event)
            if event.HasField("artifact_update"):
                break  # "first" is out: the run waits at its gate
        task_id = first[0].task.id
        subscribed = steerer.subscribe(SubscribeToTaskRequest(id=task_id))
        subscribed_first = await anext(subscribed)
        assert subscribed_first.task.id == task_id

        req = steering(task_id, "also the costs")
        steered = steerer.send_message(req)
        head = await anext(steered)
        # The steering stream: the task as it is now, the message at the end of its history.
        assert head.task.id == task_id and head.task.status.state == WORKING
        assert head.task.history[-1].message_id == req.message.message_id
        gate.touch()
        streams = {
            "original": first + await until_final(original),
            "steering": [head, *await until_final(steered)],
            "subscribed": [subscribed_first, *await until_final(subscribed)],
        }
    for name, events in streams.items():
        assert state(events[-1]) == COMPLETED, name
        ids = {task_of(e) for e in events}
        assert ids == {task_id}, name  # one task, from the first turn to the last
        text = Text()
        for event in events:
            text.apply(event)
        assert text.text == f"firstsaw: plan it gate={gate} | also the costs", name
        # No final state before the end: the steered run's end is a WORKING status that says so.
        assert not any(state(e) in TERMINAL for e in events[:-1]), name
    marks = [
        MessageToDict(e.status_update.status.message.metadata)
        for e in streams["original"]
        if e.HasField("status_update") and e.status_update.status.HasField("message")
    ]
    assert {"reason": "steered"} in marks


@pytest.mark.parametrize("backend", BACKENDS)
async def test_steering_input_for_a_run_that_ends_waiting_for_input_goes_first_in_the_answer(
    server: InProcessServer, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    async with a2a_client(server) as client:
        task = await working(client, "steer_tool", gate, "looking it up")
        await wait_for_tool_call(client, task.id)
        req = steering(task.id, "use the cache", return_immediately=True)
        assert (await send(client, req)).status.state == WORKING
        gate.touch()
        # The run ended waiting for its tool's output: the steering input is pending.
        paused = await wait_for_task(client, task.id, lambda t: t.status.state in TERMINAL, "end")
        assert paused.status.state == INPUT_REQUIRED
        assert paused.history[-1].message_id == req.message.message_id
        reply = answer(task.id, "42")
        reply.metadata.update({"model": "steer_tool"})
        done = await send(client, reply)
    assert (done.id, done.status.state) == (task.id, COMPLETED)
    # The answer's run had the pending input first, then the tool's output.
    assert artifact_text(done) == f"looking it upsaw: plan it gate={gate} | use the cache"
    assert user_texts(done)[-2:] == ["use the cache", "42"]


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_steering_input_of_a_run_that_fails_is_not_applied_and_the_task_fails(
    server: InProcessServer, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    async with a2a_client(server) as client:
        task = await working(client, "steer_fail", gate)
        req = steering(task.id, "never applied", return_immediately=True)
        assert (await send(client, req)).status.state == WORKING
        gate.touch()
        failed = await wait_for_task(client, task.id, lambda t: t.status.state in TERMINAL, "end")
        assert failed.status.state == FAILED
        assert "failed after the gate" in failed.status.message.parts[0].text
        assert not has_message(failed, req.message)
        # A terminal task takes no more messages: the SDK's own error for it.
        with pytest.raises(UnsupportedOperationError, match="terminal state"):
            await send(client, steering(task.id, "too late"))


@pytest.fixture
def pushing(servers: ServerPool) -> InProcessServer:
    """A server that may push to a receiver on loopback, with one steering input at most queued
    per run."""
    return servers.get(
        "sqlite", "--drain-timeout", "1", "--a2a-allow-private-push", "--max-pending-steers", "1",
        agent=A2A_ROUTER,
    )  # fmt: skip


async def test_push_notifications_follow_a_steered_task_into_its_next_turn(
    pushing: InProcessServer, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    receiver = Receiver()
    try:
        async with a2a_client(pushing) as client:
            task = await working(client, "steerable", gate)
            req = steering(task.id, "also the costs", return_immediately=True)
            config = req.configuration.task_push_notification_config
            config.url, config.id = receiver.url, "hook"
            await send(client, req)
            gate.touch()
            done = await wait_for_task(client, task.id, lambda t: t.status.state in TERMINAL, "end")
            assert done.status.state == COMPLETED
            receiver.wait_for_state("TASK_STATE_COMPLETED")
    finally:
        receiver.close()
    # The steered turn's states (from its first: the config came with the message), then the
    # next turn's from its first (its run is queued, then works); the steered run's end is no
    # state change of the task, and the task completes once.
    assert receiver.states() == [
        "TASK_STATE_SUBMITTED", "TASK_STATE_WORKING",
        "TASK_STATE_SUBMITTED", "TASK_STATE_WORKING", "TASK_STATE_COMPLETED",
    ]  # fmt: skip
    assert {body["statusUpdate"]["taskId"] for _, body in receiver.accepted()} == {task.id}


async def test_steering_input_beyond_the_pending_limit_is_refused_as_retryable(
    pushing: InProcessServer, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    async with a2a_client(pushing) as client:
        task = await working(client, "steerable", gate)
        await send(client, steering(task.id, "one", return_immediately=True))
        refused = steering(task.id, "two", return_immediately=True)
        with pytest.raises(A2AError, match="already has 1 steering inputs queued") as raised:
            await send(client, refused)
        assert raised.value.data == {"retryAfterSeconds": 1}
        gate.touch()
        done = await wait_for_task(client, task.id, lambda t: t.status.state in TERMINAL, "end")
    assert artifact_text(done).endswith("| one")
    assert not has_message(done, refused.message)


@pytest.fixture
def grpc_server(tmp_path: Path) -> Iterator[InProcessServer]:
    with fresh_database("sqlite", tmp_path) as database:
        args = ["--drain-timeout", "1", "--a2a-grpc-port", str(free_port())]
        server = InProcessServer(database, args, agent=A2A_ROUTER).start()
        try:
            yield server
        finally:
            server.stop()


async def test_a_working_task_is_steered_over_grpc_too(
    grpc_server: InProcessServer, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    async with (
        a2a_client(grpc_server, GRPC) as client,
        a2a_client(grpc_server, GRPC, streaming=True) as streaming,
    ):
        task = await working(client, "steerable", gate)
        steered = streaming.send_message(steering(task.id, "also the costs"))
        head = await anext(steered)
        assert head.task.id == task.id and head.task.status.state == WORKING
        gate.touch()
        events = [head, *await until_final(steered)]
    assert state(events[-1]) == COMPLETED
    assert {task_of(e) for e in events} == {task.id}
    text = Text()
    for event in events:
        text.apply(event)
    assert text.text == f"firstsaw: plan it gate={gate} | also the costs"


async def test_a_turn_is_recorded_once_whoever_records_it(tmp_path: Path) -> None:
    """Recording the next turn of a task is a compare-and-set on its current turn: of two
    recorders of a steered run's successor (its follower, and a reader that found it after a
    restart, on this replica or another), one wins and the other changes nothing."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from outlast.a2a.index import SteerRow, TaskIndex, TaskRow, TurnTaken

    db = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'a2a.db'}")
    index = TaskIndex(db)
    try:
        await index.create_tables()
        row = TaskRow("resp_1", "owner", "ctx", 0.0, b"{}", "TASK_STATE_WORKING", 0.0)
        await index.add(row)
        await index.add_steer(SteerRow("steer_1", "resp_1", "resp_1", "owner", b"{}", "queued"))
        first, second = dataclasses.replace(row), dataclasses.replace(row)
        await index.add_turn(first, "resp_2", b"[]", "TASK_STATE_SUBMITTED", ["steer_1"])
        with pytest.raises(TurnTaken):
            await index.add_turn(second, "resp_2", b"[]", "TASK_STATE_SUBMITTED", ["steer_1"])
        assert [turn.run_id for turn in await index.turns("resp_1")] == ["resp_2"]
        stored = await index.get("resp_1", "owner")
        assert stored is not None and stored.run == "resp_2"
        assert await index.steers("resp_1") == []
    finally:
        await db.dispose()
