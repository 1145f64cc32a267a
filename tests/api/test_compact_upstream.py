"""The upstream model agent's compaction, against a fake OpenAI-compatible model server.

- A Responses upstream: ``client.responses.compact()`` is forwarded to the model's own
  ``/responses/compact``, whose output and usage come back as they are.
- A Chat Completions upstream (which has no compact endpoint): the model is asked for a summary,
  which comes back as one assistant message, with the model's token counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from inprocess import InProcessServer

from fake_model import FakeModel, Text


@pytest.fixture
def fake() -> Iterator[FakeModel]:
    with FakeModel() as model:
        yield model


def upstream_server(
    make_server: Callable[..., InProcessServer], fake: FakeModel, api: str
) -> InProcessServer:
    env = {
        "OUTLAST_UPSTREAM_BASE_URL": fake.base_url,
        "OUTLAST_UPSTREAM_API_KEY": "fake-key",
        "OUTLAST_UPSTREAM_API": api,
    }
    return make_server(agent="outlast.agents:upstream", env=env)


def test_a_responses_upstream_compacts_with_the_models_own_compact_endpoint(
    make_server: Callable[..., InProcessServer], fake: FakeModel
) -> None:
    server = upstream_server(make_server, fake, "responses")
    with server.client() as client:
        compacted = client.responses.compact(model="fake", input="remember the number 42")
    assert [item.type for item in compacted.output] == ["compaction"]
    item = compacted.output[0]
    assert item.type == "compaction" and item.encrypted_content == "fake-compaction:1"
    assert (compacted.usage.input_tokens, compacted.usage.total_tokens) == (100, 110)
    [sent] = [r for r in fake.requests if r.path == "/responses/compact"]
    assert sent.body["model"] == "fake"
    assert sent.body["input"][0]["content"][0]["text"] == "remember the number 42"


def test_a_chat_upstream_compacts_with_a_summary_the_model_writes(
    make_server: Callable[..., InProcessServer], fake: FakeModel
) -> None:
    server = upstream_server(make_server, fake, "chat")
    fake.script([Text(["The user's number is 42."])])
    with server.client() as client:
        compacted = client.responses.compact(model="fake", input="remember the number 42")
        assert [item.type for item in compacted.output] == ["message"]
        message = compacted.output[0]
        assert message.type == "message" and message.role == "assistant"
        text = message.content[0].text  # type: ignore[union-attr]
        assert text.endswith("The user's number is 42.")
        [sent] = [r for r in fake.requests if r.path == "/chat/completions"]
        assert "Summarise the conversation" in sent.body["messages"][-1]["content"]
        # The summary continues the conversation like any response.
        fake.script([Text(["42."])])
        follow = client.responses.create(
            model="fake", input="which number?", previous_response_id=compacted.id
        )
        assert follow.output_text == "42."
        messages = [r for r in fake.requests if r.path == "/chat/completions"][-1].body["messages"]
        assert [m["role"] for m in messages] == ["assistant", "user"]
        assert "42" in str(messages[0]["content"])
