"""``outlast testmodel``: the offline model a user starts with one command, and what it answers.

It is a process of its own (the command is the point): the ``openai`` SDK drives a tool loop
through it over Chat Completions and Responses, streamed and not, and ``outlast serve`` hosts the
OpenAI Agents SDK example and the upstream agent against it, with no key and no network.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from helpers import wait_until
from serverproc import ServerProcess, free_port

REPOSITORY = Path(__file__).resolve().parents[2]
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city"],
}


@pytest.fixture(scope="module")
def testmodel() -> Iterator[str]:
    port = free_port()
    command = [str(Path(sys.executable).parent / "outlast"), "testmodel", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"

    def up() -> bool:
        try:
            httpx.post(f"{url}/chat/completions", json={"messages": []}, timeout=1)
        except httpx.HTTPError:
            return False
        return True

    try:
        wait_until(up, "the test model serves")
        yield url
    finally:
        process.terminate()
        process.wait(10)


def test_chat_completions_call_the_first_tool_then_answer_with_its_output(testmodel: str) -> None:
    model = OpenAI(base_url=testmodel, api_key="none")
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]
    messages: list[dict[str, object]] = [{"role": "user", "content": "weather in Paris?"}]
    first = model.chat.completions.create(model="any", messages=messages, tools=tools)  # type: ignore[arg-type]
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"city":"example"}')
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "21 °C"},
    ]
    second = model.chat.completions.create(model="any", messages=messages, tools=tools)  # type: ignore[arg-type]
    assert second.choices[0].message.content == "The tool said: 21 °C"
    streamed = model.chat.completions.create(
        model="any", messages=[{"role": "user", "content": "hello there"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == (
        "You said: hello there"
    )


def test_the_responses_api_streams_the_same_answers(testmodel: str) -> None:
    model = OpenAI(base_url=testmodel, api_key="none")
    tool = {"type": "function", "name": "get_weather", "parameters": WEATHER}
    calls = [
        e.item
        for e in model.responses.create(model="any", input="weather?", tools=[tool], stream=True)  # type: ignore[list-item]
        if e.type == "response.output_item.done" and e.item.type == "function_call"
    ]
    assert [(c.name, c.arguments) for c in calls] == [("get_weather", '{"city":"example"}')]  # type: ignore[union-attr]
    answered = model.responses.create(
        model="any",
        input=[
            {"role": "user", "content": "weather?"},
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "21 °C"},
        ],
        tools=[tool],  # type: ignore[list-item]
    )
    assert answered.output_text == "The tool said: 21 °C"
    assert model.responses.create(model="any", input="hi").output_text == "You said: hi"


def outlast_run(server: ServerProcess, prompt: str) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OUTLAST_")}
    done = subprocess.run(
        [sys.executable, "-m", "outlast", "run", prompt, "--url", server.url],
        capture_output=True, text=True, env=environment, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_outlast_hosts_the_upstream_agent_on_it(testmodel: str, tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "db",
        agent="outlast.agents:upstream",
        args=["--upstream-base-url", testmodel, "--upstream-api", "responses"],
    ).start()
    try:
        assert outlast_run(server, "hello") == "You said: hello\n"
    finally:
        server.stop()


def test_the_agents_sdk_example_runs_its_tool_loop_on_it(testmodel: str, tmp_path: Path) -> None:
    pytest.importorskip("agents")
    server = ServerProcess(
        tmp_path / "db",
        agent="examples.openai_agents_example:agent",
        env={
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")])
            ),
            "OPENAI_BASE_URL": testmodel,
            "OPENAI_API_KEY": "none",
            "OPENAI_AGENTS_DISABLE_TRACING": "1",
        },
    ).start()
    try:
        # The model calls get_weather(city="example"); the tool's answer comes back as text.
        assert (
            outlast_run(server, "weather in Paris?") == "The tool said: example: 21 °C and sunny\n"
        )
    finally:
        server.stop()
