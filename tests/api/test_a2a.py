"""A2A over a real ``outlast serve``, with a2a-sdk's own client: the agent card, sending
(blocking, ``return_immediately``, streaming), getting, listing, cancelling, multi-turn contexts,
subscribing (the spec's way, and lossless with ``Last-Event-ID``), API-key isolation.

A task is a run of the engine: its id is the response id, and the Responses API sees the same run.

The server is in-process and shared by the tests (an open one, and one accepting a pool of API
keys for the tests that list tasks or check who owns them, each with keys of its own), on SQLite;
sending, listing, cancelling and lossless resubscribing run on PostgreSQL too.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from a2a.client import Client, ClientCallContext
from a2a.types import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    StreamResponse,
    SubscribeToTaskRequest,
    TaskState,
)
from a2a.utils.errors import TaskNotCancelableError, TaskNotFoundError, UnsupportedOperationError
from inprocess import A2A_ROUTER, BACKENDS, InProcessServer, ServerPool, fresh_key

from a2a_support import (
    JSONRPC,
    REST,
    TIMEOUT,
    Text,
    artifact_text,
    count_text,
    is_final,
    request,
    send,
    sequence,
    state,
    until_final,
    wait_for_task,
)
from a2a_support import a2a_client as support_client
from helpers import iter_sse, wait_for_marker

BINDINGS = [JSONRPC, REST]
ON_EVERY_BACKEND = pytest.mark.parametrize("backend", BACKENDS)


@pytest.fixture
def server(servers: ServerPool, backend: str) -> InProcessServer:
    """The shared server hosting the A2A test agents (``a2a_agents:router``): open on SQLite,
    keyed on PostgreSQL (see ``ServerPool.shared``)."""
    return servers.shared(backend, A2A_ROUTER)


@pytest.fixture
def keyed_server(servers: ServerPool, backend: str) -> InProcessServer:
    """The shared server hosting the A2A test agents and accepting every key of the pool."""
    return servers.keyed(backend, A2A_ROUTER)


def a2a_client(
    server: InProcessServer,
    binding: str = JSONRPC,
    *,
    api_key: str | None = None,
    streaming: bool = True,
) -> contextlib.AbstractAsyncContextManager[Client]:
    """``a2a_support.a2a_client``, sending the server's own test key when it needs one."""
    return support_client(
        server, binding, api_key=api_key or server.default_key, streaming=streaming
    )


def auth(server: InProcessServer) -> dict[str, str]:
    key = server.default_key
    return {"Authorization": f"Bearer {key}"} if key else {}


# -- the agent card ------------------------------------------------------------------------------


def test_agent_card_lists_both_bindings_streaming_and_push(
    make_server: Callable[..., InProcessServer],
) -> None:
    server = make_server(
        "--drain-timeout", "1",
        "--a2a-name", "Researcher",
        "--a2a-description", "Looks things up, for hours if need be.",
        "--a2a-skill", "Research: finds and summarises sources",
        "--a2a-skill", '{"id": "sum", "name": "Summaries", "description": "Short ones", '
                       '"tags": ["text"], "examples": ["summarise this"]}',
        agent=A2A_ROUTER,
    )  # fmt: skip
    card = httpx.get(f"{server.url}/.well-known/agent-card.json", timeout=TIMEOUT).json()
    assert card["name"] == "Researcher"
    assert card["description"] == "Looks things up, for hours if need be."
    assert card["capabilities"] == {"streaming": True, "pushNotifications": True}
    interfaces = {i["protocolBinding"]: i for i in card["supportedInterfaces"]}
    assert set(interfaces) == {"JSONRPC", "HTTP+JSON"}
    for interface in interfaces.values():
        assert interface["url"] == f"{server.url}/v1/a2a"
        assert interface["protocolVersion"] == "1.0"
    assert [(s["id"], s["name"], s["description"]) for s in card["skills"]] == [
        ("research", "Research", "finds and summarises sources"),
        ("sum", "Summaries", "Short ones"),
    ]
    assert card["skills"][1]["examples"] == ["summarise this"]


def test_agent_card_defaults_to_the_agent_and_its_docstring(server: InProcessServer) -> None:
    card = httpx.get(f"{server.url}/.well-known/agent-card.json", timeout=TIMEOUT).json()
    assert card["name"] == "a2a_agents:router"
    assert card["description"].startswith("Dispatches on ``agent=NAME``")
    assert [s["id"] for s in card["skills"]] == ["default"]
    assert "securitySchemes" not in card  # no API keys: an open server


def test_agent_card_is_cacheable_and_revalidates_with_304(server: InProcessServer) -> None:
    url = f"{server.url}/.well-known/agent-card.json"
    first = httpx.get(url, timeout=TIMEOUT)
    assert first.headers["cache-control"] == "public, max-age=300"
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert email.utils.parsedate_to_datetime(modified).timestamp() <= time.time()
    again = httpx.get(url, headers={"If-None-Match": etag}, timeout=TIMEOUT)
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    since = httpx.get(url, headers={"If-Modified-Since": modified}, timeout=TIMEOUT)
    assert since.status_code == 304
    # An older copy, another tag, or an unreadable date: the card itself.
    older = email.utils.formatdate(time.time() - 86400 * 365, usegmt=True)
    for headers in ({"If-Modified-Since": older}, {"If-None-Match": '"other"'},
                    {"If-Modified-Since": "yesterday"}):  # fmt: skip
        fresh = httpx.get(url, headers=headers, timeout=TIMEOUT)
        assert (fresh.status_code, fresh.json()) == (200, first.json())
    # If-None-Match decides alone when both are sent (RFC 9110).
    both = {"If-None-Match": '"other"', "If-Modified-Since": modified}
    assert httpx.get(url, headers=both, timeout=TIMEOUT).status_code == 200


def test_agent_card_max_age_is_configurable(make_server: Callable[..., InProcessServer]) -> None:
    server = make_server("--drain-timeout", "1", "--a2a-card-max-age", "1h", agent=A2A_ROUTER)
    card = httpx.get(f"{server.url}/.well-known/agent-card.json", timeout=TIMEOUT)
    assert card.headers["cache-control"] == "public, max-age=3600"


@pytest.mark.parametrize("slash", ["", "/"])
def test_the_rest_routes_answer_with_and_without_a_trailing_slash(
    server: InProcessServer, slash: str
) -> None:
    headers = {"A2A-Version": "1.0", **auth(server)}
    with httpx.Client(base_url=server.url, headers=headers, timeout=TIMEOUT) as http:
        body = {"message": {"role": "ROLE_USER", "messageId": "m1", "parts": [{"text": "hi"}]}}
        sent = http.post(f"/v1/a2a/message:send{slash}", json=body, follow_redirects=False)
        assert sent.status_code == 200, sent.text
        task_id = sent.json()["task"]["id"]
        got = http.get(f"/v1/a2a/tasks/{task_id}{slash}", follow_redirects=False)
        assert (got.status_code, got.json()["id"]) == (200, task_id)
        listed = http.get(f"/v1/a2a/tasks{slash}", follow_redirects=False)
        assert listed.status_code == 200


@pytest.mark.parametrize("path", ["/v1/a2a", "/v1/a2a/"])
def test_the_json_rpc_endpoint_answers_with_and_without_a_trailing_slash(
    server: InProcessServer, path: str
) -> None:
    answer = httpx.post(
        server.url + path,
        json={"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "resp_unknown"}},
        headers={"A2A-Version": "1.0", **auth(server)},
        timeout=TIMEOUT,
        follow_redirects=False,
    )
    assert answer.status_code == 200
    assert answer.json()["error"]["code"] == -32001


# -- sending -------------------------------------------------------------------------------------


@ON_EVERY_BACKEND
@pytest.mark.parametrize("binding", BINDINGS)
async def test_send_message_waits_for_the_end_and_answers_the_completed_task(
    server: InProcessServer, binding: str
) -> None:
    async with a2a_client(server, binding, streaming=False) as client:
        task = await send(client, request("hello from another agent"))
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert artifact_text(task) == "hello from another agent"
    assert task.context_id
    assert [m.parts[0].text for m in task.history] == ["hello from another agent"]
    # One engine, one store: the task is the response of the same id.
    with server.client() as openai:
        response = openai.responses.retrieve(task.id)
    assert response.status == "completed"
    assert response.output_text == "hello from another agent"
    assert response.background is True


async def test_return_immediately_answers_submitted_and_the_task_runs_on(
    server: InProcessServer,
) -> None:
    async with a2a_client(server, streaming=False) as client:
        task = await send(
            client, request("n=20 delay=0.02", model="count", return_immediately=True)
        )
        assert task.status.state == TaskState.TASK_STATE_SUBMITTED
        assert not task.artifacts
        done = await wait_for_task(
            client, task.id, lambda t: t.status.state in (TaskState.TASK_STATE_COMPLETED,), "done"
        )
    assert artifact_text(done) == count_text(20)


@pytest.mark.parametrize("binding", BINDINGS)
async def test_streaming_sends_the_task_then_status_updates_and_artifact_chunks(
    server: InProcessServer, binding: str
) -> None:
    async with a2a_client(server, binding) as client:
        events = await until_final(client.send_message(request("n=5", model="count")))
    kinds = [e.WhichOneof("payload") for e in events]
    assert kinds[0] == "task" and events[0].task.status.state == TaskState.TASK_STATE_SUBMITTED
    assert kinds[1] == "status_update" and state(events[1]) == TaskState.TASK_STATE_WORKING
    chunks = [e.artifact_update for e in events if e.HasField("artifact_update")]
    assert [c.append for c in chunks] == [False, True, True, True, True, True]
    assert [c.last_chunk for c in chunks] == [False] * 5 + [True]
    assert len({c.artifact.artifact_id for c in chunks}) == 1
    assert "".join(p.text for c in chunks for p in c.artifact.parts) == count_text(5)
    assert state(events[-1]) == TaskState.TASK_STATE_COMPLETED
    numbers = [sequence(e) for e in events]
    assert numbers == sorted(set(numbers)) and numbers[0] == 0
    task_id = events[0].task.id
    assert {getattr(e, k).task_id for e, k in zip(events[1:], kinds[1:], strict=True)} == {task_id}


async def test_tool_calls_and_reasoning_arrive_as_agent_messages_not_artifacts(
    server: InProcessServer,
) -> None:
    async with a2a_client(server) as client:
        events = await until_final(client.send_message(request("go", model="tools")))
        task = await client.get_task(GetTaskRequest(id=events[0].task.id))
    items = [
        e.status_update.status.message
        for e in events
        if e.HasField("status_update") and e.status_update.status.HasField("message")
    ]
    kinds = [dict(m.metadata)["type"] for m in items]
    assert kinds == ["reasoning", "function_call", "function_call_output"]
    call = items[1].parts[0].data.struct_value
    assert call["name"] == "get_weather"
    assert artifact_text(task) == "It is 21 °C in Paris.A second message."
    assert len(task.artifacts) == 2
    assert [dict(m.metadata).get("type") for m in task.history[1:]] == kinds


# -- getting and listing -----------------------------------------------------------------------


async def test_get_task_honours_history_length(server: InProcessServer) -> None:
    async with a2a_client(server, streaming=False) as client:
        task = await send(client, request("go", model="tools"))
        full = await client.get_task(GetTaskRequest(id=task.id))
        none = await client.get_task(GetTaskRequest(id=task.id, history_length=0))
        last = await client.get_task(GetTaskRequest(id=task.id, history_length=1))
    assert len(full.history) == 4  # the user's message, then reasoning, call, call output
    assert full.history[0].parts[0].text == "go"
    assert not none.history
    assert [m.message_id for m in last.history] == [full.history[-1].message_id]
    assert artifact_text(none) == artifact_text(full)


@ON_EVERY_BACKEND
async def test_list_tasks_filters_by_context_and_state_and_pages(
    keyed_server: InProcessServer,
) -> None:
    async with a2a_client(keyed_server, streaming=False, api_key=fresh_key()) as client:
        first = await send(client, request("one"))
        second = await send(client, request("two", context_id=first.context_id))
        other = await send(client, request("three"))
        running = await send(client, request("wait", model="block", return_immediately=True))
        await wait_for_task(client, running.id, lambda t: bool(t.artifacts), "the task works")

        everything = await client.list_tasks(ListTasksRequest())
        assert [t.id for t in everything.tasks] == [running.id, other.id, second.id, first.id]
        assert everything.total_size == 4
        assert not any(t.artifacts for t in everything.tasks)  # only with include_artifacts

        context = await client.list_tasks(
            ListTasksRequest(context_id=first.context_id, include_artifacts=True)
        )
        assert [t.id for t in context.tasks] == [second.id, first.id]
        assert [artifact_text(t) for t in context.tasks] == ["two", "one"]

        working = await client.list_tasks(ListTasksRequest(status=TaskState.TASK_STATE_WORKING))
        assert [t.id for t in working.tasks] == [running.id]

        page1 = await client.list_tasks(ListTasksRequest(page_size=3))
        page2 = await client.list_tasks(
            ListTasksRequest(page_size=3, page_token=page1.next_page_token)
        )
        assert [t.id for t in [*page1.tasks, *page2.tasks]] == [t.id for t in everything.tasks]
        assert page1.next_page_token and not page2.next_page_token
        assert page1.total_size == page2.total_size == 4
        await client.cancel_task(CancelTaskRequest(id=running.id))


# -- cancelling ------------------------------------------------------------------------------------


@ON_EVERY_BACKEND
@pytest.mark.parametrize("binding", BINDINGS)
async def test_cancel_stops_the_agent_and_a_finished_task_is_not_cancelable(
    server: InProcessServer, binding: str, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    async with a2a_client(server, binding, streaming=False) as client:
        task = await send(
            client, request(f"marker={marker}", model="block", return_immediately=True)
        )
        wait_for_marker(marker, "started")
        cancelled = await client.cancel_task(CancelTaskRequest(id=task.id))
        assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
        wait_for_marker(marker, "cancelled")  # the agent itself was interrupted
        assert artifact_text(cancelled) == "waiting "
        with pytest.raises(TaskNotCancelableError):
            await client.cancel_task(CancelTaskRequest(id=task.id))
        again = await client.get_task(GetTaskRequest(id=task.id))
    assert again.status.state == TaskState.TASK_STATE_CANCELED


# -- conversations -----------------------------------------------------------------------------


@ON_EVERY_BACKEND
async def test_a_message_in_the_same_context_continues_the_conversation(
    server: InProcessServer,
) -> None:
    async with a2a_client(server, streaming=False) as client:
        first = await send(client, request("my name is Ada"))
        second = await send(
            client, request("what is my name?", model="context", context_id=first.context_id)
        )
    assert second.id != first.id and second.context_id == first.context_id
    seen = json.loads(artifact_text(second))
    texts = [part["text"] for item in seen["input"] for part in item["content"] if "text" in part]
    # The agent sees the first turn (question and answer), then the new message.
    assert texts == ["my name is Ada", "my name is Ada", "what is my name?"]
    assert seen["previous_response_id"] == first.id


# -- subscribing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("binding", BINDINGS)
async def test_subscribe_to_a_running_task_sends_the_task_then_live_events(
    server: InProcessServer, binding: str
) -> None:
    async with a2a_client(server, binding) as client:
        start = request("n=40 delay=0.03", model="count", return_immediately=True)
        async with a2a_client(server, binding, streaming=False) as sender:
            task = await send(sender, start)
        await wait_for_task(client, task.id, lambda t: len(artifact_text(t)) > 10, "some text")
        events = await until_final(client.subscribe(SubscribeToTaskRequest(id=task.id)))
    assert events[0].HasField("task")
    assert events[0].task.status.state == TaskState.TASK_STATE_WORKING
    assert not any(e.HasField("task") for e in events[1:])
    text = Text()
    for event in events:
        text.apply(event)
    assert text.text == count_text(40)
    assert state(events[-1]) == TaskState.TASK_STATE_COMPLETED


async def test_subscribe_to_a_finished_task_is_unsupported_so_clients_get_it(
    server: InProcessServer,
) -> None:
    async with a2a_client(server) as client:
        events = await until_final(client.send_message(request("done soon")))
        task_id = events[0].task.id
        with pytest.raises(UnsupportedOperationError, match="terminal state"):
            [e async for e in client.subscribe(SubscribeToTaskRequest(id=task_id))]
        task = await client.get_task(GetTaskRequest(id=task_id))
    assert artifact_text(task) == "done soon"


@ON_EVERY_BACKEND
@pytest.mark.parametrize("binding", BINDINGS)
async def test_resubscribing_with_the_last_sequence_number_gets_every_missed_event_once(
    server: InProcessServer, binding: str
) -> None:
    n = 60
    async with a2a_client(server, binding) as client:
        seen = []
        stream = client.send_message(request(f"n={n} delay=0.02", model="count"))
        async with contextlib.aclosing(stream):
            async for event in stream:
                seen.append(event)
                if sum(e.HasField("artifact_update") for e in seen) == 10:
                    break  # the connection drops here
        last = sequence(seen[-1])
        task_id = seen[0].task.id
        before = Text()
        for event in seen:
            before.apply(event)

        resume = ClientCallContext(service_parameters={"Last-Event-ID": str(last)})
        after = await until_final(
            client.subscribe(SubscribeToTaskRequest(id=task_id), context=resume)
        )
        # The whole log, for comparison, once the task has ended.
        replay = await until_final(
            client.subscribe(
                SubscribeToTaskRequest(id=task_id),
                context=ClientCallContext(service_parameters={"Last-Event-ID": "0"}),
            )
        )

    # First, the task as of the last event received: exactly what the client had.
    assert after[0].HasField("task") and sequence(after[0]) == last
    assert artifact_text(after[0].task) == before.text
    # Then every later event, each once, in order: the same as in the full log.
    missed = [sequence(e) for e in after[1:]]
    assert missed == [sequence(e) for e in replay[1:] if sequence(e) > last]
    assert missed == sorted(set(missed)) and missed[0] > last
    text = Text()
    for event in seen + after[1:]:
        text.apply(event)
    assert text.text == count_text(n)
    assert is_final(after[-1]) and state(after[-1]) == TaskState.TASK_STATE_COMPLETED


def statuses(events: list[StreamResponse]) -> dict[int, tuple[int, int]]:
    """Each status of a stream (the task's, then its updates') by sequence number: its state
    and its timestamp."""
    found = {}
    for event in events:
        status = event.task.status if event.HasField("task") else event.status_update.status
        if event.HasField("task") or event.HasField("status_update"):
            found[sequence(event)] = (status.state, status.timestamp.ToNanoseconds())
    return found


@ON_EVERY_BACKEND
@pytest.mark.parametrize("binding", BINDINGS)
async def test_every_subscriber_replay_and_poll_sees_a_status_with_the_same_timestamp(
    server: InProcessServer, binding: str
) -> None:
    replay_all = ClientCallContext(service_parameters={"Last-Event-ID": "0"})
    async with a2a_client(server, binding) as client:
        live: list[StreamResponse] = []
        stream = client.send_message(request("n=30 delay=0.02", model="count"))
        async with contextlib.aclosing(stream):
            async for event in stream:
                live.append(event)
                if event.HasField("artifact_update"):
                    break
            task_id = live[0].task.id
            # A second subscriber while it runs, from the start.
            other = await until_final(
                client.subscribe(SubscribeToTaskRequest(id=task_id), context=replay_all)
            )
            live += await until_final(stream)
        replay = await until_final(
            client.subscribe(SubscribeToTaskRequest(id=task_id), context=replay_all)
        )
        polled = await client.get_task(GetTaskRequest(id=task_id))
    seen = statuses(live)
    assert [state for state, _ in seen.values()][-1] == TaskState.TASK_STATE_COMPLETED
    assert len(seen) >= 3  # SUBMITTED, WORKING, COMPLETED
    # The replays begin with the task as of event 0: the rest are the same events.
    assert {seq: s for seq, s in statuses(other).items() if seq > 0} == {
        seq: s for seq, s in seen.items() if seq > 0
    }
    assert {seq: s for seq, s in statuses(replay).items() if seq > 0} == {
        seq: s for seq, s in seen.items() if seq > 0
    }
    final = list(seen.values())[-1]
    assert (polled.status.state, polled.status.timestamp.ToNanoseconds()) == final
    # Each timestamp is when its state began: submitted, then working, then ended.
    stamps = [stamp for _, stamp in seen.values()]
    assert stamps == sorted(stamps)


async def test_resuming_in_the_middle_of_tool_calls_rebuilds_the_whole_task(
    server: InProcessServer,
) -> None:
    async with a2a_client(server) as client:
        events = await until_final(client.send_message(request("go", model="tools")))
        task_id = events[0].task.id
        full = await client.get_task(GetTaskRequest(id=task_id))
        calls = [
            e
            for e in events
            if e.HasField("status_update") and e.status_update.status.message.parts
        ]
        cut = sequence(calls[1])  # just after the function call
        resume = ClientCallContext(service_parameters={"Last-Event-ID": str(cut)})
        after = await until_final(
            client.subscribe(SubscribeToTaskRequest(id=task_id), context=resume)
        )
    at_cut = after[0].task
    assert [dict(m.metadata).get("type") for m in at_cut.history[1:]] == [
        "reasoning",
        "function_call",
    ]
    later = [e.status_update.status.message for e in after[1:] if e.HasField("status_update")]
    history = list(at_cut.history) + [m for m in later if m.parts]
    assert [m.message_id for m in history] == [m.message_id for m in full.history]
    text = Text()
    for event in after:
        text.apply(event)
    assert text.text == artifact_text(full)


def test_streamed_events_carry_their_sequence_number_as_the_sse_id(server: InProcessServer) -> None:
    """An EventSource reconnecting to the REST subscribe route resumes by itself."""
    message = {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "a b c"}]}
    body = {"message": message, "configuration": {"returnImmediately": True}}
    headers = {"A2A-Version": "1.0"}
    with httpx.Client(base_url=f"{server.url}/v1/a2a", timeout=TIMEOUT, headers=headers) as http:
        task_id = http.post("/message:send", json=body).json()["task"]["id"]
        resume = {"Last-Event-ID": "1"}
        with http.stream("GET", f"/tasks/{task_id}:subscribe", headers=resume) as response:
            assert response.status_code == 200
            lines = list(response.iter_lines())
    ids = [int(line.removeprefix("id: ")) for line in lines if line.startswith("id: ")]
    events = list(iter_sse(lines))
    numbers = [next(iter(e.values()))["metadata"]["sequence_number"] for e in events]
    assert ids == numbers and ids[0] == 1 and ids == sorted(set(ids))
    assert "statusUpdate" in events[-1]
    assert events[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"


# -- API keys ------------------------------------------------------------------------------------


async def test_tasks_belong_to_the_api_key_that_created_them(
    keyed_server: InProcessServer,
) -> None:
    server, key_a, key_b = keyed_server, fresh_key(), fresh_key()
    card = httpx.get(f"{server.url}/.well-known/agent-card.json", timeout=TIMEOUT).json()
    assert card["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]["scheme"] == "Bearer"
    async with a2a_client(server, api_key=key_a, streaming=False) as a:
        task = await send(a, request("mine"))
    async with a2a_client(server, api_key=key_b, streaming=False) as b:
        with pytest.raises(TaskNotFoundError):
            await b.get_task(GetTaskRequest(id=task.id))
        with pytest.raises(TaskNotFoundError):
            await b.cancel_task(CancelTaskRequest(id=task.id))
        assert not (await b.list_tasks(ListTasksRequest())).tasks
    response = httpx.post(f"{server.url}/v1/a2a", json={}, timeout=TIMEOUT)
    assert response.status_code == 401
