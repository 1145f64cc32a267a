"""The OpenAPI document says what the server does: a bounded schemathesis pass against it.

Every operation of ``/openapi.json`` gets generated requests, valid and invalid, sent to a real
in-process server (keyed, so that a request without the key must be refused): every check
schemathesis has must hold, and every answer must match the document (status, content type,
headers, body schema). Then the document's own rules that the fuzzing found wanting once: what it
refuses is what the server refuses.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import jsonschema
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from inprocess import InProcessServer, ServerPool
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS
from schemathesis.specs.openapi.checks import positive_data_acceptance

from outlast.http import routes
from outlast.http.openapi import MAX_SEQUENCE, openapi_document

FUZZ_KEY = "fuzz-key"


@pytest.fixture
def keyed(servers: ServerPool) -> InProcessServer:
    return servers.get("sqlite", "--api-key", FUZZ_KEY)


# Cases per operation and generation mode (valid, invalid): a few hundred per operation.
CASES = 100
# Where a request valid against the document may still get a 400 (in the documented error
# shape, which is checked): a create body's full rules are OpenAI's (its input item union, its
# ranges, each parameter's type), more than the document holds; and a listing's `after` must name
# a response (an item) that exists, as must a `previous_response_id`, which no schema can say.
# Every other check holds for them too.
LOOSER = {
    ("POST", "/v1/responses"): [positive_data_acceptance],
    ("POST", "/v1/responses/compact"): [positive_data_acceptance],
    ("GET", "/v1/responses"): [positive_data_acceptance],
    ("GET", "/v1/responses/{response_id}/input_items"): [positive_data_acceptance],
}


def checks_for(case: Any) -> list[Any]:
    """Every check schemathesis has, but those :data:`LOOSER` leaves out for the operation."""
    left_out = LOOSER.get((case.method.upper(), case.operation.path), [])
    return [check for check in CHECKS.get_all() if check not in left_out]


def operations(server: InProcessServer) -> list[Any]:
    config = schemathesis.Config.from_dict(
        {
            # The key goes where the document's security scheme says; a case without it (a
            # negative one) must be refused.
            "auth": {"openapi": {"bearer": {"bearer": FUZZ_KEY}}},
            # A query parameter the document does not name is ignored, as by OpenAI's API and
            # HTTP APIs generally, not refused: no cases made of those.
            "generation": {"allow-extra-parameters": False},
        }
    )
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json", config=config)
    return [result.ok() for result in schema.get_all_operations()]


def test_every_operation_answers_as_the_document_says(keyed: InProcessServer) -> None:
    # Driven by hand rather than by schemathesis's pytest plugin, which pytest 9 does not load.
    found = operations(keyed)
    assert {op.label for op in found} >= {"POST /v1/responses", "GET /healthz"}
    took: dict[str, float] = {}
    for operation in found:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=CASES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate],
            )
            def answers_as_documented(case: Any) -> None:
                case.call_and_validate(timeout=30, checks=checks_for(case))

            started = time.monotonic()
            try:
                answers_as_documented()
            except Unsatisfiable:
                # Nothing about this operation can be made invalid (/healthz takes nothing).
                assert mode is GenerationMode.NEGATIVE, operation.label
            took[f"{operation.label} {mode.value}"] = time.monotonic() - started
    print("seconds per operation and mode:", {k: round(v, 1) for k, v in took.items()})


# -- the document refuses what the server refuses --------------------------------------------


def document() -> dict[str, Any]:
    parsed: dict[str, Any] = orjson.loads(openapi_document())
    return parsed


def create_body_schema() -> dict[str, Any]:
    doc = document()
    schema: dict[str, Any] = doc["paths"]["/v1/responses"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    return {**schema, "components": doc["components"]}


@pytest.mark.parametrize(
    "body",
    [{"model": None, "input": "hi"}, {"model": "", "input": "hi"}, {"model": 5},
     {"model": "m", "background": True, "store": False}, {"model": "m", "metadata": {"k": 5}}],
)  # fmt: skip
def test_a_create_body_the_server_refuses_is_invalid_in_the_document(
    server: InProcessServer, body: dict[str, Any]
) -> None:
    assert httpx.post(f"{server.url}/v1/responses", json=body).status_code == 400
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, create_body_schema())


def parameter(path: str, method: str, name: str) -> dict[str, Any]:
    for param in document()["paths"][path][method]["parameters"]:
        if param["name"] == name:
            schema: dict[str, Any] = param["schema"]
            return schema
    raise AssertionError(f"{method} {path} has no parameter {name}")


def test_an_empty_after_and_a_too_large_starting_after_are_invalid_in_the_document(
    server: InProcessServer,
) -> None:
    assert httpx.get(f"{server.url}/v1/responses", params={"after": ""}).status_code == 400
    for path in ("/v1/responses", "/v1/responses/{response_id}/input_items"):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate("", parameter(path, "get", "after"))
    too_large = MAX_SEQUENCE + 1
    assert MAX_SEQUENCE == routes.MAX_SEQUENCE
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            too_large, parameter("/v1/responses/{response_id}", "get", "starting_after")
        )


def test_healthz_is_declared_without_a_key_as_it_is_served(servers: ServerPool) -> None:
    keyed = servers.get("sqlite", "--api-key", FUZZ_KEY)
    assert httpx.get(f"{keyed.url}/healthz").status_code == 200
    assert document()["paths"]["/healthz"]["get"]["security"] == []
