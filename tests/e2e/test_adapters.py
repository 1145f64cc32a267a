"""The agent adapters, end to end: each framework's real agent, hosted by a real ``outlast serve``,
talking to a fake model server on loopback (tests/support/fake_model.py), driven by the ``openai`` SDK.

Every adapter is run through the same scenarios: a plain answer, a tool loop, an error in the
middle of the model's stream, a cancel while the model streams, and a two-turn conversation
through ``previous_response_id``. Every event of every response is validated with the SDK's strict
types and checked for a well-formed sequence, and the final output is compared with what the
framework itself reports when it runs the same script.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

import adapter_agents
from fake_model import Fail, FakeModel, Text, Thinking, ToolCall, Turn
from helpers import TERMINAL_TYPES, replay
from serverproc import ServerProcess

EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@dataclass(frozen=True)
class Adapter:
    """One way of hosting an agent: the ``--agent`` target and the server's environment."""

    name: str
    target: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def is_upstream(self) -> bool:
        return self.target == "outlast.agents:upstream"

    @property
    def builder(self) -> str:
        return self.target.partition(":")[2]


ADAPTERS = [
    Adapter("openai-agents", "adapter_agents:openai_agent"),
    Adapter("openai-agents-chat", "adapter_agents:openai_agent_chat"),
    Adapter("agent-framework", "adapter_agents:af_agent"),
    Adapter("agent-framework-responses", "adapter_agents:af_agent_responses"),
    Adapter("langgraph", "adapter_agents:graph"),
    Adapter("langgraph-responses", "adapter_agents:graph_responses"),
    Adapter("upstream-chat", "outlast.agents:upstream", {"OUTLAST_UPSTREAM_API": "chat"}),
    Adapter("upstream-responses", "outlast.agents:upstream", {"OUTLAST_UPSTREAM_API": "responses"}),
]


@dataclass
class Rig:
    adapter: Adapter
    fake: FakeModel
    server: ServerProcess
    client: OpenAI


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeModel]:
    with FakeModel() as model:
        yield model


@pytest.fixture(scope="module", params=ADAPTERS, ids=[a.name for a in ADAPTERS])
def hosted(
    request: pytest.FixtureRequest, fake: FakeModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Adapter, ServerProcess]]:
    """One server per adapter, shared by that adapter's tests."""
    adapter: Adapter = request.param
    env = {
        "FAKE_MODEL_URL": fake.base_url,
        "OUTLAST_UPSTREAM_BASE_URL": fake.base_url,
        "OUTLAST_UPSTREAM_API_KEY": "fake-key",
        **adapter.env,
    }
    db: Path = tmp_path_factory.mktemp(adapter.name) / "outlast.db"
    server = ServerProcess(db, agent=adapter.target, env=env).start()
    yield adapter, server
    server.stop()


@pytest.fixture
def rig(hosted: tuple[Adapter, ServerProcess], fake: FakeModel) -> Iterator[Rig]:
    adapter, server = hosted
    fake.reset()
    with server.client() as client:
        yield Rig(adapter, fake, server, client)


# -- what a well-formed response looks like ---------------------------------------------------


def run_to_end(rig: Rig, **create: Any) -> tuple[Response, list[dict[str, Any]]]:
    """Create a background streamed response, read it to its end, and check its whole log."""
    stream = rig.client.responses.create(model="fake-model", background=True, stream=True, **create)
    response_id = None
    for event in stream:
        if event.type == "response.created":
            response_id = event.response.id
    assert response_id is not None
    return checked(rig, response_id)


def checked(rig: Rig, response_id: str) -> tuple[Response, list[dict[str, Any]]]:
    """The response and its event log, after checking every event and the sequence."""
    events = replay(rig.server, response_id)
    for event in events:
        EVENT.validate_json(json.dumps(event), strict=True)
    check_sequence(events)
    response = rig.client.responses.retrieve(response_id)
    assert (
        response.model_dump(mode="json", exclude_unset=True)["output"]
        == events[-1]["response"]["output"]
    )
    return response, events


def check_sequence(events: list[dict[str, Any]]) -> None:
    """Numbers gapless; each item added (at the next output_index, with a fresh id) before its
    deltas and done after them; deltas add up to the done text and arguments; the final output
    is the done items."""
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["type"] == "response.created"
    assert events[-1]["type"] in TERMINAL_TYPES
    assert all(e["type"] not in TERMINAL_TYPES for e in events[:-1])
    items: list[dict[str, Any]] = []  # added items, by output_index
    done: dict[int, dict[str, Any]] = {}
    pieces: dict[int, list[str]] = {}
    for event in events[1:-1]:
        kind = event["type"]
        if kind == "response.output_item.added":
            assert event["output_index"] == len(items), "output_index skips or repeats"
            assert event["item"]["id"] not in {i["id"] for i in items}, "item id reused"
            items.append(event["item"])
            continue
        if "output_index" not in event:
            continue
        index = event["output_index"]
        assert index < len(items), f"{kind} before its item was added"
        assert index not in done, f"{kind} after its item was done"
        if "item_id" in event:
            assert event["item_id"] == items[index]["id"]
        if kind.endswith(".delta"):
            pieces.setdefault(index, []).append(event["delta"])
        elif kind in (
            "response.output_text.done",
            "response.reasoning_summary_text.done",
        ):
            assert "".join(pieces.pop(index, [])) == event["text"]
        elif kind == "response.function_call_arguments.done":
            assert "".join(pieces.pop(index, [])) == event["arguments"]
        elif kind == "response.output_item.done":
            assert event["item"]["id"] == items[index]["id"]
            done[index] = event["item"]
    assert sorted(done) == list(range(len(items))), "an item was never done"
    assert events[-1]["response"]["output"] == [done[i] for i in range(len(items))]


def normal(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Output items, without outlast's ids and statuses, for comparing with a framework's."""
    result: list[tuple[Any, ...]] = []
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            text = "".join(p.get("text", "") for p in item["content"])
            result.append(("message", text))
        elif kind == "function_call":
            args = json.loads(item["arguments"] or "{}")
            result.append(("function_call", item["name"], args, item["call_id"]))
        elif kind == "function_call_output":
            result.append(("function_call_output", item["call_id"], item["output"]))
        elif kind == "reasoning":
            text = "\n\n".join(s["text"] for s in item["summary"])
            result.append(("reasoning", text))
    return result


def output_of(response: Response) -> list[tuple[Any, ...]]:
    return normal(response.model_dump(mode="json")["output"])


def reported(rig: Rig, prompt: str, *turns: Turn) -> list[tuple[Any, ...]]:
    """What the framework itself reports when it runs ``prompt`` against the same script."""
    rig.fake.reset()
    rig.fake.script(*turns)
    agent = adapter_agents.build(rig.adapter.builder, rig.fake.base_url)
    run: Callable[[Any, str], Any] = NATIVE[rig.adapter.builder.split("_")[0]]
    # One loop for every native run: LangChain caches its HTTP client across runs.
    return NATIVE_LOOP.run_until_complete(run(agent, prompt))


NATIVE_LOOP = asyncio.new_event_loop()


async def native_openai_agents(agent: Any, prompt: str) -> list[tuple[Any, ...]]:
    sdk = adapter_agents.import_openai_agents()
    result = sdk.Runner.run_streamed(agent, prompt)
    async for _ in result.stream_events():
        pass
    return normal([item.to_input_item() for item in result.new_items])


async def native_agent_framework(agent: Any, prompt: str) -> list[tuple[Any, ...]]:
    stream = agent.run(prompt, stream=True)
    async for _ in stream:
        pass
    final = await stream.get_final_response()
    result: list[tuple[Any, ...]] = []
    for message in final.messages:
        for content in message.contents:
            if content.type == "text" and content.text:
                result.append(("message", content.text))
            elif content.type == "text_reasoning":
                result.append(("reasoning", content.text))
            elif content.type == "function_call":
                args = content.arguments
                args = json.loads(args) if isinstance(args, str) else dict(args or {})
                result.append(("function_call", content.name, args, content.call_id))
            elif content.type == "function_result":
                result.append(("function_call_output", content.call_id, content.result))
    return result


async def native_langgraph(graph: Any, prompt: str) -> list[tuple[Any, ...]]:
    from langchain_core.messages import AIMessage, ToolMessage

    state = await graph.ainvoke({"messages": [{"role": "user", "content": prompt}]})
    result: list[tuple[Any, ...]] = []
    for message in state["messages"][1:]:
        if isinstance(message, ToolMessage):
            result.append(("function_call_output", message.tool_call_id, message.content))
        elif isinstance(message, AIMessage):
            content = message.content
            blocks: list[Any] = content if isinstance(content, list) else []
            if isinstance(content, str) and content:
                blocks = [{"type": "text", "text": content}]
            for block in blocks:
                if block.get("type") == "reasoning":
                    text = "\n\n".join(s["text"] for s in block.get("summary", []))
                    result.append(("reasoning", text))
            text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
            if text:
                result.append(("message", text))
            for call in message.tool_calls:
                result.append(("function_call", call["name"], call["args"], call["id"]))
    return result


NATIVE = {
    "openai": native_openai_agents,
    "af": native_agent_framework,
    "graph": native_langgraph,
}


def request_text(rig: Rig, index: int) -> str:
    """The model request ``index`` as JSON text (its messages or input), to look for content."""
    body = rig.fake.requests[index].body
    return json.dumps(body.get("messages") or body.get("input"), ensure_ascii=False)


# -- the scenarios ----------------------------------------------------------------------------


def test_a_plain_answer_streams_as_one_message(rig: Rig) -> None:
    turn: Turn = [Text(["Hello", ", ", "world", "!"])]
    rig.fake.script(turn)
    response, events = run_to_end(rig, input="Say hello.")

    assert response.status == "completed"
    assert output_of(response) == [("message", "Hello, world!")]
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert "".join(deltas) == "Hello, world!"
    assert "Say hello." in request_text(rig, 0)
    if not rig.adapter.is_upstream:
        assert output_of(response) == reported(rig, "Say hello.", turn)


def test_a_tool_loop_calls_the_local_tool_and_answers(rig: Rig) -> None:
    calls = [ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_weather", {"city": "Rome"})]
    first: Turn = [Thinking(["Both cities", " need a lookup."]), *calls]
    second: Turn = [Text(["Paris and Rome ", "are both sunny."])]
    rig.fake.script(first, second)
    prompt = "What is the weather in Paris and Rome?"

    if rig.adapter.is_upstream:
        # The upstream model returns its calls; the client runs the tool and sends the outputs.
        response, _ = run_to_end(rig, input=prompt, tools=[WEATHER_TOOL])
        assert output_of(response) == [
            ("reasoning", "Both cities need a lookup."),
            ("function_call", "get_weather", {"city": "Paris"}, calls[0].call_id),
            ("function_call", "get_weather", {"city": "Rome"}, calls[1].call_id),
        ]
        outputs = [
            {
                "type": "function_call_output",
                "call_id": item.call_id,
                "output": adapter_agents.get_weather(**json.loads(item.arguments)),
            }
            for item in response.output
            if item.type == "function_call"
        ]
        response, _ = run_to_end(
            rig, input=outputs, previous_response_id=response.id, tools=[WEATHER_TOOL]
        )
        assert output_of(response) == [("message", "Paris and Rome are both sunny.")]
    else:
        response, _ = run_to_end(rig, input=prompt)
        output = output_of(response)
        assert [o for o in output if o[0] != "reasoning"] == [
            ("function_call", "get_weather", {"city": "Paris"}, calls[0].call_id),
            ("function_call", "get_weather", {"city": "Rome"}, calls[1].call_id),
            ("function_call_output", calls[0].call_id, "Paris: 21 °C and sunny"),
            ("function_call_output", calls[1].call_id, "Rome: 21 °C and sunny"),
            ("message", "Paris and Rome are both sunny."),
        ]
        assert output == reported(rig, prompt, first, second)

    assert response.status == "completed"
    # The model's second request carried both tool results.
    second_request = request_text(rig, 1)
    assert "Paris: 21 °C and sunny" in second_request
    assert "Rome: 21 °C and sunny" in second_request


def test_an_error_in_the_model_stream_fails_the_run_with_its_message(rig: Rig) -> None:
    rig.fake.script([Text(["Let me ", "think"]), Fail("the model is overloaded")])
    response, events = run_to_end(rig, input="Say something.")

    assert response.status == "failed"
    assert response.error is not None
    assert "the model is overloaded" in response.error.message
    assert events[-1]["type"] == "response.failed"


def test_cancel_closes_the_model_connection(rig: Rig) -> None:
    rig.fake.script([Text(["tick "] * 2000, delay=0.02)])
    stream = rig.client.responses.create(
        model="fake-model", input="Count slowly.", background=True, stream=True
    )
    response_id = None
    for event in stream:
        if event.type == "response.created":
            response_id = event.response.id
        if event.type == "response.output_text.delta":
            break
    assert response_id is not None
    rig.client.responses.cancel(response_id)
    stream.close()

    assert rig.fake.wait_for_disconnect(), "the model's stream was never closed"
    response, events = checked(rig, response_id)
    assert response.status == "cancelled"
    assert events[-1]["type"] == "response.incomplete"
    assert rig.fake.finished_streams == 0


def test_previous_response_id_carries_the_conversation(rig: Rig) -> None:
    rig.fake.script([Text(["Paris is ", "in France."])], [Text(["About ", "2 million."])])
    first, _ = run_to_end(rig, input="Where is Paris?")
    second, _ = run_to_end(rig, input="How many people live there?", previous_response_id=first.id)

    assert output_of(first) == [("message", "Paris is in France.")]
    assert output_of(second) == [("message", "About 2 million.")]
    history = request_text(rig, 1)
    positions = [
        history.find(text)
        for text in ("Where is Paris?", "Paris is in France.", "How many people live there?")
    ]
    assert -1 not in positions, history
    assert positions == sorted(positions), "the conversation is out of order"


# -- what the upstream model is sent -------------------------------------------------------------

PIXEL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
PDF = "data:application/pdf;base64,JVBERi0xLjQKJSVFT0YK"
OTHER_TOOL = {**WEATHER_TOOL, "name": "get_time", "description": "Get the time in a city."}


def upstream_only(rig: Rig) -> None:
    if not rig.adapter.is_upstream:
        pytest.skip("what the upstream agent sends its model")


def sent(rig: Rig) -> dict[str, Any]:
    """The body of the one request the model received."""
    assert len(rig.fake.requests) == 1
    return rig.fake.requests[0].body


def test_input_images_and_files_reach_the_upstream_model(rig: Rig) -> None:
    upstream_only(rig)
    rig.fake.script([Text(["A red dot."])])
    content = [
        {"type": "input_text", "text": "What is in these?"},
        {"type": "input_image", "image_url": PIXEL, "detail": "low"},
        {"type": "input_file", "file_data": PDF, "filename": "empty.pdf"},
    ]
    response, _ = run_to_end(rig, input=[{"role": "user", "content": content}])

    assert response.status == "completed"
    body = sent(rig)
    if rig.adapter.env["OUTLAST_UPSTREAM_API"] == "chat":
        assert body["messages"][-1]["content"] == [
            {"type": "text", "text": "What is in these?"},
            {"type": "image_url", "image_url": {"url": PIXEL, "detail": "low"}},
            {"type": "file", "file": {"file_data": PDF, "filename": "empty.pdf"}},
        ]
    else:
        parts = body["input"][-1]["content"]
        assert [p["type"] for p in parts] == ["input_text", "input_image", "input_file"]
        assert (parts[1]["image_url"], parts[2]["file_data"]) == (PIXEL, PDF)


def test_a_file_the_chat_api_cannot_take_fails_the_run_saying_so(rig: Rig) -> None:
    upstream_only(rig)
    file = {"type": "input_file", "file_url": "https://example.com/report.pdf"}
    response, _ = run_to_end(rig, input=[{"role": "user", "content": [file]}])

    if rig.adapter.env["OUTLAST_UPSTREAM_API"] == "chat":
        assert response.status == "failed"
        assert response.error is not None and "file_url" in response.error.message
        assert rig.fake.requests == []  # refused before the model was called
    else:
        assert sent(rig)["input"][-1]["content"] == [file]


def test_allowed_tools_offers_the_model_only_the_listed_tools(rig: Rig) -> None:
    upstream_only(rig)
    rig.fake.script([Text(["Fine."])])
    choice = {
        "type": "allowed_tools",
        "mode": "required",
        "tools": [{"type": "function", "name": "get_weather"}],
    }
    run_to_end(rig, input="Weather?", tools=[WEATHER_TOOL, OTHER_TOOL], tool_choice=choice)

    body = sent(rig)
    names = [t.get("name") or t["function"]["name"] for t in body["tools"]]
    assert names == ["get_weather"]
    assert body["tool_choice"] == "required"


def test_an_assistant_messages_phase_reaches_a_responses_model(rig: Rig) -> None:
    upstream_only(rig)
    rig.fake.script([Text(["Done."])])
    history = [
        {"role": "user", "content": "Plan, then answer."},
        {"type": "message", "role": "assistant", "phase": "commentary",
         "content": [{"type": "output_text", "text": "Planning.", "annotations": []}]},
        {"role": "user", "content": "Go on."},
    ]  # fmt: skip
    response, _ = run_to_end(rig, input=history)

    assert response.status == "completed"
    body = sent(rig)
    if rig.adapter.env["OUTLAST_UPSTREAM_API"] == "chat":
        # Chat Completions has no phase: the message goes without it (strict servers refuse
        # fields they do not know).
        assert body["messages"][1] == {"role": "assistant", "content": "Planning."}
    else:
        assert body["input"][1] == {
            "role": "assistant", "content": "Planning.", "phase": "commentary"
        }  # fmt: skip


def test_a_responses_models_phase_is_kept_and_sent_back_on_the_next_turn(rig: Rig) -> None:
    if rig.adapter.env.get("OUTLAST_UPSTREAM_API") != "responses":
        pytest.skip("a Responses model's message phase (Chat Completions has none)")
    rig.fake.script(
        [Text(["Let me check."], phase="commentary"), Text(["It is 21 °C."], phase="final_answer")],
        [Text(["You are welcome."], phase="final_answer")],
    )
    first, events = run_to_end(rig, input="Weather?")
    assert [getattr(item, "phase", None) for item in first.output] == ["commentary", "final_answer"]
    added = [e["item"] for e in events if e["type"] == "response.output_item.added"]
    assert [item["phase"] for item in added] == ["commentary", "final_answer"]

    run_to_end(rig, input="Thanks.", previous_response_id=first.id)
    history = rig.fake.requests[1].body["input"]
    assert [m.get("phase") for m in history if m.get("role") == "assistant"] == [
        "commentary", "final_answer"
    ]  # fmt: skip


def test_usage_sums_the_token_counts_of_every_model_call(rig: Rig) -> None:
    # The fake model counts 10 input and 20 output tokens per call.
    if rig.adapter.is_upstream:
        rig.fake.script([Text(["Hello."])])
        response, _ = run_to_end(rig, input="Say hello.")
        calls = 1
    else:
        rig.fake.script([ToolCall("get_weather", {"city": "Oslo"})], [Text(["Sunny."])])
        response, _ = run_to_end(rig, input="Weather in Oslo?")
        calls = 2
    assert response.status == "completed"
    assert len(rig.fake.requests) == calls
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (10 * calls, 20 * calls)
    assert response.usage.total_tokens == 30 * calls


def test_an_agent_framework_workflow_agent_is_hosted_without_a_journal(tmp_path: Path) -> None:
    # A WorkflowAgent's run takes no middleware: it runs as before, its usage the run's total.
    with FakeModel() as fake:
        fake.script([ToolCall("get_weather", {"city": "Oslo"})], [Text(["Oslo is ", "sunny."])])
        env = {"FAKE_MODEL_URL": fake.base_url}
        server = ServerProcess(tmp_path / "outlast.db", agent="adapter_agents:af_workflow",
                               env=env)  # fmt: skip
        server.start(60)
        try:
            with server.client() as client:
                rig = Rig(
                    Adapter("af-workflow", "adapter_agents:af_workflow"), fake, server, client
                )
                response, _ = run_to_end(rig, input="Weather in Oslo?")
        finally:
            server.stop()
    assert response.status == "completed", response.error
    assert ("message", "Oslo is sunny.") in output_of(response)
    assert response.usage is not None and response.usage.total_tokens == 60
