"""A response's input (contract: docs/responses-contract.md): its input items and their paging
(``limit``, ``order``, ``after``), and ``previous_response_id`` chains, which give the agent the
earlier turns' inputs and outputs first (function calls included), refused for an unknown id or
together with ``conversation``.

Server: ``outlast serve --agent scripted_agents:router`` (tests/support/scripted_agents.py): the
request's ``model`` picks the agent (echo, count, fail, block, tools, context). It is one
in-process server shared by the tests (tests/api/conftest.py), so each test checks only the
responses it created. Every event and response object is validated against the installed SDK's
own types (see tests/api/responses_support.py). On SQLite; the core lifecycle runs on
PostgreSQL too (``ON_EVERY_BACKEND``).
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from inprocess import InProcessServer
from openai import OpenAI
from responses_support import (
    AUTH,
    ON_EVERY_BACKEND,
    WAIT,
    api_error,
    context_of,
    create_background,
    item_text,
    message_turns,
    wait_until_done,
)


def test_string_input_becomes_one_user_message_item_with_an_id(client: OpenAI) -> None:
    response = client.responses.create(model="echo", input="just a string")
    page = client.responses.input_items.list(response.id)
    assert len(page.data) == 1
    item = page.data[0]
    assert item.type == "message"
    assert item.role == "user"
    assert item.id
    assert [(part.type, part.text) for part in item.content] == [("input_text", "just a string")]
    assert page.has_more is False


@ON_EVERY_BACKEND
def test_input_items_are_paged_with_limit_order_and_after(
    client: OpenAI, server: InProcessServer
) -> None:
    texts = [f"m{i}" for i in range(5)]
    response = client.responses.create(
        model="echo", input=[{"role": "user", "content": t} for t in texts]
    )
    url = f"{server.base_url}/responses/{response.id}/input_items"

    def page(**params: Any) -> dict[str, Any]:
        reply = httpx.get(url, params=params, headers=AUTH, timeout=WAIT)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["object"] == "list"
        assert set(body) >= {"data", "first_id", "last_id", "has_more"}
        return body

    everything = page(order="asc")
    ids = [item["id"] for item in everything["data"]]
    assert [item_text(item) for item in everything["data"]] == texts
    assert len(set(ids)) == 5 and all(ids)
    assert everything["has_more"] is False
    assert (everything["first_id"], everything["last_id"]) == (ids[0], ids[-1])

    first = page(order="asc", limit=2)
    assert [i["id"] for i in first["data"]] == ids[:2]
    assert first["has_more"] is True
    assert (first["first_id"], first["last_id"]) == (ids[0], ids[1])
    second = page(order="asc", limit=2, after=first["last_id"])
    assert [i["id"] for i in second["data"]] == ids[2:4]
    assert second["has_more"] is True
    third = page(order="asc", limit=2, after=second["last_id"])
    assert [i["id"] for i in third["data"]] == ids[4:]
    assert third["has_more"] is False

    newest_first = page()  # default order is desc
    assert [i["id"] for i in newest_first["data"]] == ids[::-1]
    desc = page(order="desc", limit=3, after=ids[4])
    assert [i["id"] for i in desc["data"]] == ids[3:0:-1]
    assert desc["has_more"] is True

    # the SDK's own paging walks every page
    walked = [
        item.id for item in client.responses.input_items.list(response.id, limit=2, order="asc")
    ]
    assert walked == ids
    sdk_page = client.responses.input_items.list(response.id, limit=2, order="desc", after=ids[2])
    assert [item.id for item in sdk_page.data] == [ids[1], ids[0]]
    assert sdk_page.has_more is False


def test_input_items_default_limit_is_20(client: OpenAI) -> None:
    response = client.responses.create(
        model="echo", input=[{"role": "user", "content": f"n{i}"} for i in range(25)]
    )
    page = client.responses.input_items.list(response.id)
    assert len(page.data) == 20
    assert page.has_more is True
    assert item_text(page.data[0].model_dump()) == "n24"


def test_input_items_keep_function_call_outputs_and_assistant_messages(client: OpenAI) -> None:
    items: list[Any] = [
        {"role": "user", "content": "what is the weather?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        {"role": "assistant", "content": "It is sunny."},
        {"role": "user", "content": [{"type": "input_text", "text": "thanks"}]},
    ]
    response = client.responses.create(model="echo", input=items)
    assert response.output_text == "thanks"
    listed = client.responses.input_items.list(response.id, order="asc").data
    assert [i.type for i in listed] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
        "message",
    ]
    assert listed[1].call_id == listed[2].call_id == "call_1"
    assert all(i.id for i in listed)


@ON_EVERY_BACKEND
def test_previous_response_chain_gives_the_agent_earlier_inputs_and_outputs_first(
    client: OpenAI,
) -> None:
    first = client.responses.create(model="echo", input="first question")
    assert first.output_text == "first question"

    second = client.responses.create(
        model="context", input="second question", previous_response_id=first.id
    )
    seen = context_of(second)
    assert second.previous_response_id == first.id
    assert seen["previous_response_id"] == first.id
    assert seen["input_text"] == "second question"
    assert message_turns(seen["input"]) == [
        ("user", "first question"),
        ("assistant", "first question"),
        ("user", "second question"),
    ]

    third = create_background(client, "context", "third question", previous_response_id=second.id)
    seen3 = context_of(wait_until_done(client, third.id))
    assert message_turns(seen3["input"]) == [
        ("user", "first question"),
        ("assistant", "first question"),
        ("user", "second question"),
        ("assistant", second.output_text),
        ("user", "third question"),
    ]
    # input items of a response list its own input only
    own = client.responses.input_items.list(third.id).data
    assert [item_text(i.model_dump()) for i in own] == ["third question"]


def test_previous_response_chain_includes_function_calls_and_their_outputs(client: OpenAI) -> None:
    tools = client.responses.create(model="tools", input="weather?")
    follow = client.responses.create(
        model="context", input="and now?", previous_response_id=tools.id
    )
    seen = context_of(follow)
    kinds = [item.get("type", "message") for item in seen["input"]]
    assert kinds[0] == "message"
    assert "function_call" in kinds and "function_call_output" in kinds
    assert kinds.index("function_call") < kinds.index("function_call_output")
    assert message_turns(seen["input"])[-1] == ("user", "and now?")


def test_unknown_previous_response_id_is_rejected(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="echo", input="x", previous_response_id="resp_doesnotexist")
    assert info.value.status_code == 400
    error = api_error(info.value)
    assert error == {
        "message": "Previous response with id 'resp_doesnotexist' not found.",
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": "previous_response_not_found",
    }


def test_unknown_previous_response_id_is_rejected_in_background_mode_too(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(
            model="echo", input="x", background=True, previous_response_id="resp_nope"
        )
    assert api_error(info.value)["code"] == "previous_response_not_found"
    assert api_error(info.value)["param"] == "previous_response_id"


def test_previous_response_id_cannot_be_combined_with_conversation(client: OpenAI) -> None:
    first = client.responses.create(model="echo", input="x")
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(
            model="echo", input="y", previous_response_id=first.id, conversation="conv_123"
        )
    assert api_error(info.value)["type"] == "invalid_request_error"
