"""A2A's gRPC binding (``--a2a-grpc-port``): a2a-sdk's gRPC client against a real server, over
the same handler as JSON-RPC and HTTP+JSON, so a task is the same task on every binding. On a
server of the test's own (API keys on), on both backends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from a2a.client import ClientCallContext
from a2a.types import (
    CancelTaskRequest,
    GetExtendedAgentCardRequest,
    GetTaskRequest,
    ListTasksRequest,
    SubscribeToTaskRequest,
    TaskState,
)
from a2a.utils.errors import TaskNotFoundError, UnsupportedOperationError
from inprocess import A2A_ROUTER, BACKENDS, TEST_KEY, InProcessServer

from a2a_support import (
    GRPC,
    JSONRPC,
    TIMEOUT,
    Text,
    a2a_client,
    answer,
    artifact_text,
    count_text,
    grpc_channel,
    request,
    send,
    sequence,
    state,
    until_final,
    wait_for_task,
)
from databases import fresh_database
from serverproc import free_port

OTHER_KEY = "other-key"


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[InProcessServer]:
    port = free_port()
    with fresh_database(request.param, tmp_path) as database:
        server = InProcessServer(
            database,
            ["--drain-timeout", "1", "--a2a-grpc-port", str(port),
             "--api-key", TEST_KEY, "--api-key", OTHER_KEY],
            agent=A2A_ROUTER,
        ).start()  # fmt: skip
        try:
            yield server
        finally:
            server.stop()


def grpc_url(server: InProcessServer) -> str:
    card = httpx.get(f"{server.url}/.well-known/agent-card.json", timeout=TIMEOUT).json()
    (interface,) = [i for i in card["supportedInterfaces"] if i["protocolBinding"] == GRPC]
    url: str = interface["url"]
    return url


def test_the_card_lists_the_grpc_binding_on_loopback(server: InProcessServer) -> None:
    card = httpx.get(f"{server.url}/.well-known/agent-card.json", timeout=TIMEOUT).json()
    bindings = [i["protocolBinding"] for i in card["supportedInterfaces"]]
    assert bindings == ["JSONRPC", "HTTP+JSON", "GRPC"]
    assert grpc_url(server).startswith("127.0.0.1:")


def test_the_card_advertises_the_proxy_address_when_given(
    make_server: Callable[..., InProcessServer],
) -> None:
    server = make_server(
        "--drain-timeout", "1", "--a2a-grpc-port", str(free_port()),
        "--a2a-grpc-url", "agents.example.com:443", agent=A2A_ROUTER,
    )  # fmt: skip
    assert grpc_url(server) == "agents.example.com:443"


async def test_send_stream_get_and_list_over_grpc(server: InProcessServer) -> None:
    async with a2a_client(server, GRPC, api_key=TEST_KEY, streaming=False) as client:
        task = await send(client, request("hello over grpc"))
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        assert artifact_text(task) == "hello over grpc"
        polled = await client.get_task(GetTaskRequest(id=task.id))
        assert artifact_text(polled) == "hello over grpc"
        listed = await client.list_tasks(ListTasksRequest())
        assert task.id in [t.id for t in listed.tasks]
    async with a2a_client(server, GRPC, api_key=TEST_KEY) as client:
        events = await until_final(client.send_message(request("n=5", model="count")))
    text = Text()
    for event in events:
        text.apply(event)
    assert text.text == count_text(5)
    assert [sequence(e) for e in events] == sorted({sequence(e) for e in events})
    # The same task over JSON-RPC: one handler, one store.
    async with a2a_client(server, JSONRPC, api_key=TEST_KEY) as client:
        same = await client.get_task(GetTaskRequest(id=task.id))
    assert artifact_text(same) == "hello over grpc"


async def test_cancel_and_a_lossless_resubscribe_over_grpc(server: InProcessServer) -> None:
    async with a2a_client(server, GRPC, api_key=TEST_KEY, streaming=False) as client:
        started = request("n=400 delay=0.02", model="count", return_immediately=True)
        task = await send(client, started)
        await wait_for_task(client, task.id, lambda t: bool(t.artifacts), "some text")
    resume = ClientCallContext(service_parameters={"Last-Event-ID": "0"})
    async with a2a_client(server, GRPC, api_key=TEST_KEY) as client:
        stream = client.subscribe(SubscribeToTaskRequest(id=task.id), context=resume)
        async with contextlib.aclosing(stream):
            first = await anext(stream)
            assert first.HasField("task") and sequence(first) == 0
            following = await anext(stream)
            assert sequence(following) > 0
        cancelled = await client.cancel_task(CancelTaskRequest(id=task.id))
        assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
        with pytest.raises(UnsupportedOperationError):
            await until_final(client.subscribe(SubscribeToTaskRequest(id=task.id)))


async def test_a_question_is_answered_over_grpc(server: InProcessServer) -> None:
    async with a2a_client(server, GRPC, api_key=TEST_KEY, streaming=False) as client:
        task = await send(client, request("agent=approve the launch"))
        assert task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        done = await send(client, answer(task.id, "yes"))
    assert (done.id, done.status.state) == (task.id, TaskState.TASK_STATE_COMPLETED)
    assert state(await anext_event(server, task.id)) == TaskState.TASK_STATE_COMPLETED


async def anext_event(server: InProcessServer, task_id: str) -> object:
    resume = ClientCallContext(service_parameters={"Last-Event-ID": "0"})
    async with a2a_client(server, GRPC, api_key=TEST_KEY) as client:
        events = await until_final(
            client.subscribe(SubscribeToTaskRequest(id=task_id), context=resume)
        )
    return events[-1]


async def test_tasks_belong_to_their_key_and_a_call_without_one_is_unauthenticated(
    server: InProcessServer,
) -> None:
    async with a2a_client(server, GRPC, api_key=TEST_KEY, streaming=False) as client:
        task = await send(client, request("mine"))
    async with a2a_client(server, GRPC, api_key=OTHER_KEY, streaming=False) as client:
        with pytest.raises(TaskNotFoundError):
            await client.get_task(GetTaskRequest(id=task.id))
    from a2a.types import a2a_pb2, a2a_pb2_grpc

    for key in (None, "wrong-key"):
        async with grpc_channel(grpc_url(server), key) as channel:
            stub = a2a_pb2_grpc.A2AServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.GetTask(a2a_pb2.GetTaskRequest(id=task.id))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_send_over_the_keys_rate_is_resource_exhausted_over_grpc(
    tmp_path: Path,
) -> None:
    with fresh_database("sqlite", tmp_path) as database:
        server = InProcessServer(
            database,
            ["--a2a-grpc-port", str(free_port()), "--api-key", TEST_KEY,
             "--key-limit", "* rate=1/h"],
            agent=A2A_ROUTER,
        ).start()  # fmt: skip
        try:
            async with a2a_client(server, GRPC, api_key=TEST_KEY, streaming=False) as client:
                await send(client, request("the one send this hour"))
            from a2a.types import a2a_pb2_grpc

            async with grpc_channel(grpc_url(server), TEST_KEY) as channel:
                stub = a2a_pb2_grpc.A2AServiceStub(channel)
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await stub.SendMessage(request("one more"))
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "rate" in (refused.value.details() or "").lower()
        finally:
            server.stop()


async def test_grpc_status_codes_are_the_specs(server: InProcessServer) -> None:
    """A2A 1.0 §5.4 (and the A2A TCK): an unsupported operation is UNIMPLEMENTED, a task that
    cannot be canceled FAILED_PRECONDITION (a2a-sdk's own table says FAILED_PRECONDITION for
    both)."""
    from a2a.types import a2a_pb2_grpc

    async with a2a_client(server, GRPC, api_key=TEST_KEY, streaming=False) as client:
        task = await send(client, request("hello"))
    async with grpc_channel(grpc_url(server), TEST_KEY) as channel:
        stub = a2a_pb2_grpc.A2AServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await stub.CancelTask(CancelTaskRequest(id=task.id))
        with pytest.raises(grpc.aio.AioRpcError) as unsupported:
            await stub.GetExtendedAgentCard(GetExtendedAgentCardRequest())
    assert ended.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert unsupported.value.code() == grpc.StatusCode.UNIMPLEMENTED
