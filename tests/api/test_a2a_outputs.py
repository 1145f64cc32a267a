"""Files and data both ways: an A2A message's id, data and file parts reach the agent
(``AgentRequest.message_id``, ``.parts``), and the files and data an agent yields
(``outlast.File``, ``outlast.Data``) are artifacts over A2A, and ``outlast_file`` /
``outlast_data`` output items over the Responses API that the openai SDK parses (the test agents:
``inspect`` and ``produce`` in ``tests/support/a2a_agents.py``).
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable

import httpx
import pytest
from a2a.client import Client
from a2a.types import Artifact, GetTaskRequest, TaskState
from google.protobuf.json_format import MessageToDict
from inprocess import A2A_ROUTER, InProcessServer, ServerPool
from openai import OpenAI

from a2a_agents import PNG
from a2a_support import GRPC, JSONRPC, REST, request, rpc, send, until_final
from a2a_support import a2a_client as support_client
from outlast import Data, File
from serverproc import free_port

BINDINGS = [JSONRPC, REST]


def auth(server: InProcessServer) -> dict[str, str]:
    key = server.default_key
    return {"Authorization": f"Bearer {key}"} if key else {}


@pytest.fixture
def server(servers: ServerPool) -> InProcessServer:
    return servers.shared("sqlite", A2A_ROUTER)


def a2a_client(
    server: InProcessServer, binding: str = JSONRPC, *, streaming: bool = False
) -> contextlib.AbstractAsyncContextManager[Client]:
    return support_client(server, binding, api_key=server.default_key, streaming=streaming)


def check_artifacts(artifacts: list[Artifact]) -> None:
    """The artifacts of the ``produce`` agent, in order: text, file bytes, file URL, data, text."""
    kinds = [[part.WhichOneof("content") for part in a.parts] for a in artifacts]
    assert kinds == [["text"], ["raw"], ["url"], ["data"], ["data"], ["text"]]
    text, raw, url, data, other, done = artifacts
    assert (text.parts[0].text, done.parts[0].text) == ("Here is the chart. ", "Done.")
    assert raw.parts[0].raw == PNG
    assert (raw.name, raw.parts[0].filename, raw.parts[0].media_type) == (
        "chart.png", "chart.png", "image/png"
    )  # fmt: skip
    assert url.parts[0].url == "https://example.com/report.pdf"
    assert (url.parts[0].filename, url.parts[0].media_type) == ("report.pdf", "application/pdf")
    assert MessageToDict(data.parts[0].data) == {"rows": [1, 2, 3], "ok": True}
    assert data.parts[0].media_type == "application/json"
    assert MessageToDict(other.parts[0].data) == ["a", "b"]
    assert other.parts[0].media_type == "application/vnd.example+json"


@pytest.mark.parametrize("binding", BINDINGS)
async def test_files_and_data_are_artifacts_of_the_task(
    server: InProcessServer, binding: str
) -> None:
    async with a2a_client(server, binding) as client:
        task = await send(client, request("agent=produce"))
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        check_artifacts(list(task.artifacts))
        polled = await client.get_task(GetTaskRequest(id=task.id))
    check_artifacts(list(polled.artifacts))
    # Artifacts, not messages: the history holds the user's message only.
    assert len(task.history) == 1


@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_file_or_data_streams_as_one_whole_artifact_update(
    server: InProcessServer, binding: str
) -> None:
    async with a2a_client(server, binding, streaming=True) as client:
        events = await until_final(client.send_message(request("agent=produce")))
    updates = [e.artifact_update for e in events if e.HasField("artifact_update")]
    whole = [u for u in updates if u.artifact.parts[0].WhichOneof("content") != "text"]
    assert [(u.append, u.last_chunk) for u in whole] == [(False, True)] * 4
    assert whole[0].artifact.parts[0].raw == PNG
    assert MessageToDict(whole[2].artifact.parts[0].data) == {"rows": [1, 2, 3], "ok": True}


async def test_files_and_data_reach_a_grpc_client_whole(
    make_server: Callable[..., InProcessServer],
) -> None:
    port = str(free_port())
    grpc_server = make_server("--drain-timeout", "1", "--a2a-grpc-port", port, agent=A2A_ROUTER)
    async with support_client(grpc_server, GRPC, streaming=False) as client:
        task = await send(client, request("agent=produce"))
    check_artifacts(list(task.artifacts))
    async with support_client(grpc_server, GRPC) as client:
        events = await until_final(client.send_message(request("agent=produce")))
    raw = [
        part.raw
        for e in events
        if e.HasField("artifact_update")
        for part in e.artifact_update.artifact.parts
        if part.WhichOneof("content") == "raw"
    ]
    assert raw == [PNG]


def test_the_responses_api_shows_outlast_file_and_data_items_the_sdk_parses(
    server: InProcessServer,
) -> None:
    key = server.default_key or "anything"
    openai = OpenAI(base_url=server.base_url, api_key=key, max_retries=0)  # the SDK as shipped
    events = list(openai.responses.create(model="a2a", input="agent=produce", stream=True))
    response = openai.responses.retrieve(events[-1].response.id)
    assert response.output_text == "Here is the chart. Done."
    items = [item.model_dump() for item in response.output]
    assert [item["type"] for item in items] == [
        "message", "outlast_file", "outlast_file", "outlast_data", "outlast_data", "message"
    ]  # fmt: skip
    png, pdf, data, other = items[1:5]
    assert png["filename"] == "chart.png" and png["media_type"] == "image/png"
    prefix, _, encoded = png["file_data"].partition(",")
    assert prefix == "data:image/png;base64" and base64.b64decode(encoded) == PNG
    assert pdf["file_url"] == "https://example.com/report.pdf" and "file_data" not in pdf
    assert (data["data"], data["media_type"]) == (
        {"rows": [1, 2, 3], "ok": True},
        "application/json",
    )
    assert other["data"] == ["a", "b"]
    assert all(item["status"] == "completed" for item in items)
    done = [e.item.model_dump() for e in events if e.type == "response.output_item.done"]
    assert done == items


async def test_data_that_is_not_json_fails_the_run_saying_why(server: InProcessServer) -> None:
    async with a2a_client(server) as client:
        task = await send(client, request("agent=produce bad=1"))
    assert task.status.state == TaskState.TASK_STATE_FAILED
    assert "not JSON-serialisable" in task.status.message.parts[0].text


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"data": b"x", "url": "https://example.com/x"}, {"data": "text"}, {"url": 5}],
    ids=["neither", "both", "str-data", "int-url"],
)
def test_a_file_takes_bytes_or_a_url(kwargs: dict[str, object]) -> None:
    with pytest.raises((ValueError, TypeError)):
        File("x.bin", "application/octet-stream", **kwargs)  # type: ignore[arg-type]


def test_data_defaults_to_json() -> None:
    assert Data({"a": 1}).media_type == "application/json"


def test_the_message_id_and_every_part_reach_the_agent(server: InProcessServer) -> None:
    message = {
        "role": "ROLE_USER",
        "messageId": "msg-from-the-client-7",
        "parts": [
            {"text": "agent=inspect look at these"},
            {"data": {"rows": [1, 2], "nested": {"ok": True}}, "mediaType": "application/json"},
            {
                "url": "https://example.com/a.pdf",
                "filename": "a.pdf",
                "mediaType": "application/pdf",
            },
            {"raw": base64.b64encode(PNG).decode(), "filename": "c.png", "mediaType": "image/png"},
        ],
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message}}
    answer = rpc(server, body, auth(server))
    task = answer["result"]["task"]
    seen = task["artifacts"][0]["parts"][0]["data"]
    assert seen["message_id"] == "msg-from-the-client-7"
    assert seen["parts"] == message["parts"]
    text, data = seen["content"][0]["text"], json.loads(seen["content"][1]["text"])
    assert (text, data) == ("agent=inspect look at these", message["parts"][1]["data"])
    kinds = [part["type"] for part in seen["content"]]
    assert kinds == ["input_text", "input_text", "input_file", "input_image"]


def test_over_the_responses_api_there_is_no_message_id_or_parts(server: InProcessServer) -> None:
    key = server.default_key or "anything"
    openai = OpenAI(base_url=server.base_url, api_key=key, max_retries=0)
    response = openai.responses.create(model="a2a", input="agent=inspect")
    seen = response.output[0].model_dump()["data"]
    assert (seen["message_id"], seen["parts"]) == (None, [])


def test_the_operator_widens_the_accepted_media_types(servers: ServerPool) -> None:
    """``--a2a-input-mode`` replaces the card's input modes; ``*/*`` hands any file on."""
    server = servers.get("sqlite", "--a2a-input-mode", "*/*", agent=A2A_ROUTER)
    card = httpx.get(f"{server.url}/.well-known/agent-card.json", timeout=10)
    assert card.json()["defaultInputModes"] == ["*/*"]
    part = {"raw": "AAEC", "filename": "x.bin", "mediaType": "application/x-unknown-binary"}
    message = {
        "role": "ROLE_USER",
        "messageId": "m-any",
        "parts": [{"text": "agent=inspect"}, part],
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message}}
    seen = rpc(server, body, auth(server))["result"]["task"]["artifacts"][0]["parts"][0]["data"]
    assert [item["type"] for item in seen["content"]] == ["input_text", "input_file"]


def test_by_default_the_card_lists_text_json_images_and_pdfs(server: InProcessServer) -> None:
    card = httpx.get(f"{server.url}/.well-known/agent-card.json", timeout=10)
    assert card.json()["defaultInputModes"] == [
        "text/plain",
        "application/json",
        "text/*",
        "image/*",
        "application/pdf",
    ]
