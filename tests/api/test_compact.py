"""``POST /v1/responses/compact``, as ``client.responses.compact()`` calls it, on both backends.

- The result validates under the SDK's strict ``CompactedResponse``.
- Without an agent's own compaction, its output is one compaction item that round-trips the
  conversation: a response given it as input (or naming the compacted response as its
  ``previous_response_id``) hands its agent the original conversation.
- An agent's compaction hook gives the output instead; if it fails, the lossless item is used.
- Bad requests are 400s in OpenAI's shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from inprocess import BACKENDS, InProcessServer, fresh_key
from openai import OpenAI
from openai.types.responses import Response

both_backends = pytest.mark.parametrize("backend", BACKENDS)


def agent_input(response: Response) -> list[dict[str, Any]]:
    """What the ``context`` agent was handed as input (it answers with its JSON)."""
    seen: list[dict[str, Any]] = json.loads(response.output_text)["input"]
    return seen


def essentials(items: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """Each message as (role, part type, text): what a conversation says, ids aside."""
    return [
        (item["role"], part["type"], part["text"])
        for item in items
        if item.get("type") == "message"
        for part in item["content"]
    ]


def conversation(client: OpenAI) -> Response:
    """A two-turn conversation on the ``context`` agent."""
    first = client.responses.create(model="context", input="my name is Ada")
    return client.responses.create(
        model="context", input="what is my name?", previous_response_id=first.id
    )


@both_backends
def test_the_result_is_a_strict_compacted_response_holding_one_compaction_item(
    client: OpenAI,
) -> None:
    last = conversation(client)
    compacted = client.responses.compact(model="context", previous_response_id=last.id)
    assert compacted.object == "response.compaction"
    assert compacted.id.startswith("resp_")
    assert [item.type for item in compacted.output] == ["compaction"]
    assert compacted.usage.total_tokens == 0  # no model was called


@both_backends
def test_a_response_given_the_compaction_item_as_input_sees_the_original_conversation(
    client: OpenAI,
) -> None:
    last = conversation(client)
    original = agent_input(last) + json.loads(last.model_dump_json())["output"]
    compacted = client.responses.compact(
        model="context", previous_response_id=last.id, input="and where do I live?"
    )
    item = compacted.output[0].model_dump(exclude_none=True)
    follow = client.responses.create(
        model="context", input=[item, {"role": "user", "content": "answer briefly"}]
    )
    seen = agent_input(follow)
    expected = [
        *essentials(original),
        ("user", "input_text", "and where do I live?"),
        ("user", "input_text", "answer briefly"),
    ]
    assert essentials(seen) == expected
    assert not any(i.get("type") == "compaction" for i in seen)  # expanded, not passed on
    # The follow-up's own input is stored as sent: the compaction item, then the message.
    listed = client.responses.input_items.list(follow.id, order="asc")
    assert [i.type for i in listed.data] == ["compaction", "message"]


@both_backends
def test_the_compacted_response_chains_like_any_response(client: OpenAI) -> None:
    last = conversation(client)
    compacted = client.responses.compact(model="context", previous_response_id=last.id)
    follow = client.responses.create(
        model="context", input="still there?", previous_response_id=compacted.id
    )
    before = essentials(agent_input(last) + json.loads(last.model_dump_json())["output"])
    assert essentials(agent_input(follow)) == [*before, ("user", "input_text", "still there?")]
    # It is a stored response of its own, complete, whose output is the compaction.
    stored = client.responses.retrieve(compacted.id)
    assert stored.status == "completed"
    assert [item.type for item in stored.output] == ["compaction"]


@both_backends
def test_a_corrupt_outlast_compaction_item_is_refused_as_bad_input(client: OpenAI) -> None:
    bad = {"type": "compaction", "encrypted_content": "outlast.compaction.v1:not-base64!"}
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="context", input=[bad])
    assert refused.value.param == "input"
    # Another compaction item (a model's, opaque) is passed to the agent as it is.
    theirs = {"type": "compaction", "encrypted_content": "gAAAA-opaque"}
    seen = agent_input(client.responses.create(model="context", input=[theirs]))
    assert seen[0]["encrypted_content"] == "gAAAA-opaque"


@both_backends
def test_bad_compact_requests_are_400s(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as nothing:
        client.responses.compact(model="context")
    assert nothing.value.param == "input"
    with pytest.raises(openai.BadRequestError) as unknown:
        client.responses.compact(model="context", input="x", extra_body={"colour": "red"})
    assert unknown.value.code == "unknown_parameter"
    with pytest.raises(openai.BadRequestError) as missing:
        client.responses.compact(model="context", previous_response_id="resp_nope")
    assert missing.value.code == "previous_response_not_found"


@pytest.mark.parametrize("backend", ["postgres"])  # the shared server that accepts keys
def test_another_keys_response_cannot_be_compacted(client: OpenAI, server: InProcessServer) -> None:
    last = conversation(client)
    with (
        server.client(api_key=fresh_key()) as other,
        pytest.raises(openai.BadRequestError) as refused,
    ):
        other.responses.compact(model="context", previous_response_id=last.id)
    assert refused.value.code == "previous_response_not_found"


def test_an_agents_compaction_hook_gives_the_output_and_its_usage(
    make_server: Callable[..., InProcessServer],
) -> None:
    server = make_server(agent="compact_agents:agent")
    with server.client() as client:
        compacted = client.responses.compact(model="m", input="hello there")
        assert [item.type for item in compacted.output] == ["message"]
        message = compacted.output[0]
        assert message.type == "message"
        assert message.content[0].text == "Summary of 1 items: hello there"  # type: ignore[union-attr]
        assert (compacted.usage.input_tokens, compacted.usage.total_tokens) == (40, 48)
        # A failing hook: the conversation is still compacted, losslessly.
        fallback = client.responses.compact(model="broken", input="hello there")
        assert [item.type for item in fallback.output] == ["compaction"]


def test_the_openapi_document_describes_compact_and_the_retry_after_of_429s(
    server: InProcessServer,
) -> None:
    document = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    compact = document["paths"]["/v1/responses/compact"]["post"]
    assert compact["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CompactedResponse"
    }
    for operation in (compact, document["paths"]["/v1/responses"]["post"]):
        assert "Retry-After" in operation["responses"]["429"]["headers"]


def test_a_compaction_item_holding_more_than_the_conversation_limit_is_refused(
    make_server: Callable[..., InProcessServer],
) -> None:
    from outlast.protocol.compaction import compaction_item

    server = make_server("--max-conversation-size", "20000")
    # 2 MB of conversation that compresses to a few KB: the body is small, what it holds is not.
    held = [{"type": "message", "role": "user", "content": [{"type": "input_text",
                                                             "text": "a" * 2_000_000}]}]  # fmt: skip
    item = compaction_item(held)
    assert len(item["encrypted_content"]) < 20000
    with server.client() as client, pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="context", input=[item])
    assert refused.value.code == "context_length_exceeded"
    assert refused.value.param == "input"
    with server.client() as client:
        small = compaction_item([{"type": "message", "role": "user", "content": "hi"}])
        untyped = compaction_item([{"role": "user", "content": "no type"}])
        with pytest.raises(openai.BadRequestError) as malformed:
            client.responses.create(model="context", input=[untyped])
        assert malformed.value.param == "input"
        seen = agent_input(client.responses.create(model="context", input=[small]))
        assert [i.get("content") for i in seen] == ["hi"]


def test_a_compact_request_is_bounded_as_a_create_is(
    make_server: Callable[..., InProcessServer],
) -> None:
    server = make_server("--max-input-items", "3")
    items = [{"role": "user", "content": f"m{i}"} for i in range(4)]
    with server.client() as client, pytest.raises(openai.BadRequestError) as refused:
        client.responses.compact(model="context", input=items)  # type: ignore[arg-type]
    assert (refused.value.param, refused.value.code) == ("input", "array_above_max_length")
