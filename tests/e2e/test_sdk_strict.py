"""The unmodified ``openai`` SDK against a real ``outlast serve``, validating strictly.

End to end: a server process on loopback, the SDK with ``_strict_response_validation``, and every
object and event it hands back checked once more with its pydantic types in strict mode. A
stream is read to its ``data: [DONE]``; a failure arrives as ``error`` then ``response.failed``
without the SDK raising; usage and tools come back in the SDK's shapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from databases import TestDatabase, fresh_database

EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
TOOL = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}


@pytest.fixture(scope="module")
def module_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDatabase]:
    """Nothing here depends on the store: SQLite."""
    with fresh_database("sqlite", tmp_path_factory.mktemp("sqlite")) as db:
        yield db


@pytest.fixture
def database(tmp_path: Path) -> Iterator[TestDatabase]:
    with fresh_database("sqlite", tmp_path) as db:
        yield db


def strictly(event: Any) -> Any:
    """The event as the SDK's type validates it from its own JSON, strictly."""
    return EVENT.validate_python(event.model_dump(mode="json", warnings=False), strict=True)


def test_a_background_stream_with_tools_is_valid_to_its_end(shared_client: OpenAI) -> None:
    stream = shared_client.responses.create(
        model="tools",
        input="weather?",
        tools=[TOOL],
        background=True,
        stream=True,
    )
    events = [strictly(event) for event in stream]
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    final = events[-1].response
    assert final.tools[0].strict is True and final.temperature == 1.0
    assert final.text.format.type == "text" and final.service_tier == "default"
    retrieved = shared_client.responses.retrieve(final.id)
    Response.model_validate(retrieved.model_dump(mode="json", warnings=False), strict=True)
    replayed = [strictly(e) for e in shared_client.responses.retrieve(final.id, stream=True)]
    assert [e.sequence_number for e in replayed] == [e.sequence_number for e in events]


def test_a_failure_reaches_the_sdk_as_error_then_response_failed(shared_client: OpenAI) -> None:
    events = [
        strictly(event)
        for event in shared_client.responses.create(model="fail", input="no disk", stream=True)
    ]
    assert [e.type for e in events[-2:]] == ["error", "response.failed"]
    assert events[-2].message == "no disk" and events[-2].code == "server_error"
    assert events[-1].response.error.message == "no disk"


def test_usage_reported_by_a_plain_generator_reaches_the_sdk(shared_client: OpenAI) -> None:
    response = shared_client.responses.create(model="usage", input="calls=2 in=10 out=4")
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (20, 8)
    assert response.usage.total_tokens == 28
    assert response.usage.output_tokens_details.reasoning_tokens == 0
