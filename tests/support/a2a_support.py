"""Helpers shared by the A2A tests (no tests here): a2a-sdk clients on a real server, requests,
and reading tasks and stream events."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import grpc.aio
import httpx
from a2a.client import A2ACardResolver, Client, ClientConfig, ClientFactory
from a2a.types import (
    GetTaskRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    StreamResponse,
    Task,
    TaskState,
)
from google.protobuf.json_format import MessageToDict

from serverproc import ServerProcess

JSONRPC = "JSONRPC"
REST = "HTTP+JSON"
GRPC = "GRPC"
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
EVENTUALLY = 15.0
TERMINAL = {
    TaskState.TASK_STATE_COMPLETED,
    TaskState.TASK_STATE_FAILED,
    TaskState.TASK_STATE_CANCELED,
    TaskState.TASK_STATE_REJECTED,
    # Not terminal, but interrupted: a stream ends there too, and a message continues the task.
    TaskState.TASK_STATE_INPUT_REQUIRED,
}


def a2a_server(make_server: Callable[..., ServerProcess], *args: str) -> ServerProcess:
    """A running server hosting the A2A test agents (``a2a_agents:router``)."""
    return make_server(agent="a2a_agents:router", args=["--drain-timeout", "1", *args]).start()


@contextlib.asynccontextmanager
async def a2a_client(
    server: ServerProcess,
    binding: str = JSONRPC,
    *,
    api_key: str | None = None,
    streaming: bool = True,
) -> AsyncIterator[Client]:
    """An a2a-sdk client, made the standard way: from the server's agent card."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(timeout=TIMEOUT, headers=headers) as http:
        card = await A2ACardResolver(http, server.url).get_agent_card()
        config = ClientConfig(
            httpx_client=http,
            streaming=streaming,
            supported_protocol_bindings=[binding],
            grpc_channel_factory=lambda url: grpc_channel(url, api_key),
        )
        client = ClientFactory(config).create(card)
        try:
            yield client
        finally:
            await client.close()


class _BearerKey:
    """Sends ``authorization: Bearer <key>`` with every gRPC call, as the HTTP client does."""

    def __init__(self, key: str) -> None:
        self.key = key

    def with_key(self, details: Any) -> Any:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        metadata.add("authorization", f"Bearer {self.key}")
        return details._replace(metadata=metadata)


class _UnaryKey(_BearerKey, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self.with_key(details), request)


class _StreamKey(_BearerKey, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self.with_key(details), request)


def grpc_channel(url: str, api_key: str | None = None) -> Any:
    """A channel to the server's gRPC binding (its card's URL), sending ``api_key`` if any."""
    interceptors = [_UnaryKey(api_key), _StreamKey(api_key)] if api_key else None
    return grpc.aio.insecure_channel(url, interceptors=interceptors)


def answer(task_id: str, text: str) -> SendMessageRequest:
    """A SendMessage answering the question of the task ``task_id`` (``INPUT_REQUIRED``)."""
    return SendMessageRequest(message=user_message(text, task_id=task_id))


def user_message(
    text: str, *, context_id: str = "", task_id: str = "", reference: str = ""
) -> Message:
    message = Message(
        message_id=str(uuid.uuid4()),
        role=Role.ROLE_USER,
        parts=[Part(text=text)],
        context_id=context_id,
        task_id=task_id,
    )
    if reference:
        message.reference_task_ids.append(reference)
    return message


def request(
    text: str,
    *,
    model: str | None = None,
    context_id: str = "",
    return_immediately: bool = False,
    history_length: int | None = None,
) -> SendMessageRequest:
    """A SendMessage request; ``model`` picks the test agent (tests/support/scripted_agents.py)."""
    config = SendMessageConfiguration(return_immediately=return_immediately)
    if history_length is not None:
        config.history_length = history_length
    req = SendMessageRequest(
        message=user_message(text, context_id=context_id), configuration=config
    )
    if model is not None:
        req.metadata.update({"model": model})
    return req


async def send(client: Client, req: SendMessageRequest) -> Task:
    """SendMessage with a non-streaming client: its one answer, a task."""
    answers = [answer async for answer in client.send_message(req)]
    assert len(answers) == 1 and answers[0].HasField("task"), answers
    return answers[0].task


def artifact_text(task: Task) -> str:
    return "".join(part.text for artifact in task.artifacts for part in artifact.parts)


def sequence(event: StreamResponse) -> int:
    """The sequence number an outlast stream event carries in its metadata."""
    payload = getattr(event, event.WhichOneof("payload"))
    value = MessageToDict(payload.metadata)["sequence_number"]
    assert value == int(value)
    return int(value)


def state(event: StreamResponse) -> int:
    kind = event.WhichOneof("payload")
    if kind == "task":
        return event.task.status.state
    if kind == "status_update":
        return event.status_update.status.state
    return TaskState.TASK_STATE_UNSPECIFIED


def task_of(event: StreamResponse) -> str:
    """The id of the task a stream event is of (a task's own, or an update's ``task_id``)."""
    if event.HasField("task"):
        return event.task.id
    return str(getattr(event, str(event.WhichOneof("payload"))).task_id)


def is_final(event: StreamResponse) -> bool:
    return state(event) in TERMINAL


class Text:
    """A client's view of a task's text, built the way A2A says: a task snapshot, then artifact
    chunks that start (``append`` false) or extend (``append`` true) an artifact."""

    def __init__(self) -> None:
        self.artifacts: dict[str, str] = {}

    def apply(self, event: StreamResponse) -> None:
        kind = event.WhichOneof("payload")
        if kind == "task":
            self.artifacts = {
                a.artifact_id: "".join(p.text for p in a.parts) for a in event.task.artifacts
            }
        elif kind == "artifact_update":
            update = event.artifact_update
            chunk = "".join(p.text for p in update.artifact.parts)
            artifact_id = update.artifact.artifact_id
            if update.append:
                assert artifact_id in self.artifacts, "append to an unknown artifact"
                self.artifacts[artifact_id] += chunk
            else:
                self.artifacts[artifact_id] = chunk

    @property
    def text(self) -> str:
        return "".join(self.artifacts.values())


async def until_final(stream: AsyncIterator[StreamResponse]) -> list[StreamResponse]:
    """Every event of a stream, checking that it ends with the final state."""
    events = [event async for event in stream]
    assert events and is_final(events[-1]), [e.WhichOneof("payload") for e in events]
    return events


async def wait_for_tool_call(client: Client, task_id: str) -> Task:
    """Until the task's history holds the function call its run made."""
    return await wait_for_task(
        client,
        task_id,
        lambda t: any(MessageToDict(m.metadata).get("type") == "function_call" for m in t.history),
        "the tool call is made",
    )


async def wait_for_task(
    client: Client,
    task_id: str,
    predicate: Callable[[Task], bool],
    what: str,
    timeout: float = EVENTUALLY,
) -> Task:
    deadline = time.monotonic() + timeout
    while True:
        task = await client.get_task(GetTaskRequest(id=task_id))
        if predicate(task):
            return task
        assert time.monotonic() < deadline, f"timed out waiting until {what}: {task}"
        await asyncio.sleep(0.05)


def count_text(n: int) -> str:
    return "".join(f"{i} " for i in range(n))


def rpc(server: ServerProcess, body: Any, headers: dict[str, str] | None = None) -> Any:
    """A raw JSON-RPC call (``body`` as JSON, or ``str``/``bytes`` sent as is)."""
    all_headers = {"A2A-Version": "1.0", "Content-Type": "application/json", **(headers or {})}
    content = body if isinstance(body, str | bytes) else None
    response = httpx.post(
        f"{server.url}/v1/a2a",
        json=None if content is not None else body,
        content=content,
        headers=all_headers,
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return response.json()


def rpc_message(text: str, **params: Any) -> dict[str, Any]:
    """The JSON-RPC params of a SendMessage."""
    return {
        "message": {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": [{"text": text}]},
        **params,
    }


class Receiver:
    """A push-notification receiver on a loopback port: records every POST (headers and JSON
    body) and answers ``500`` to the first ``fail_first`` of them, ``200`` after."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.attempts: list[tuple[int, dict[str, str], dict[str, Any]]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.lock:
                    status = 500 if len(receiver.attempts) < receiver.fail_first else 200
                    receiver.attempts.append((status, dict(self.headers), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def accepted(self) -> list[tuple[dict[str, str], dict[str, Any]]]:
        with self.lock:
            return [(headers, body) for status, headers, body in self.attempts if status == 200]

    def states(self) -> list[str]:
        return [body["statusUpdate"]["status"]["state"] for _, body in self.accepted()]

    def wait_for_state(self, wanted: str, timeout: float = EVENTUALLY) -> None:
        deadline = time.monotonic() + timeout
        while wanted not in self.states():
            assert time.monotonic() < deadline, f"no {wanted} notification: {self.states()}"
            time.sleep(0.05)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
