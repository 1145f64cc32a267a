"""The OpenAPI document, with the schemas taken from the installed ``openai`` SDK's types.

The SDK and pydantic are imported when the document is first asked for, not at start.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import orjson

import outlast
from outlast.http.compact import compact_params
from outlast.http.request import KNOWN_PARAMS

if TYPE_CHECKING:
    from pydantic import TypeAdapter

REF = "#/components/schemas/{model}"
# The largest sequence number a query names (http/routes.py refuses more).
MAX_SEQUENCE = 10**18 - 1

# The body of a create: only the names of OpenAI's ResponseCreateParams (any other is refused),
# and the fields the server reads itself typed as it checks them. The others are checked as
# OpenAI documents them (not repeated here: their schemas come to 100 KB).
CREATE_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["model"],
    "description": "OpenAI's ResponseCreateParams.",
    "propertyNames": {"enum": sorted(KNOWN_PARAMS)},
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "input": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
        "instructions": {"type": ["string", "null"]},
        "previous_response_id": {"type": ["string", "null"]},
        "background": {"type": ["boolean", "null"]},
        "stream": {"type": ["boolean", "null"]},
        "store": {"type": ["boolean", "null"]},
        "metadata": {
            "type": ["object", "null"],
            "maxProperties": 16,
            "propertyNames": {"maxLength": 64},
            "additionalProperties": {"type": "string", "maxLength": 512},
        },
    },
    # Background mode keeps the response: it cannot be asked with store false.
    "if": {"required": ["background"], "properties": {"background": {"const": True}}},
    "then": {"properties": {"store": {"not": {"const": False}}}},
}


def _schema(adapter: TypeAdapter[Any], name: str, components: dict[str, Any]) -> dict[str, Any]:
    schema = adapter.json_schema(ref_template=REF)
    components.update(schema.pop("$defs", {}))
    components[name] = schema
    return {"$ref": REF.format(model=name)}


def _too_many(description: str) -> dict[str, Any]:
    """A 429: every one has ``Retry-After``, whole seconds (http/errors.py)."""
    answer = _error(description)
    answer["headers"] = {
        "Retry-After": {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}}
    }
    return answer


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorEnvelope")}}},
    }


@functools.cache
def openapi_document() -> bytes:
    from openai.types.responses import Response, ResponseStreamEvent
    from pydantic import TypeAdapter

    components: dict[str, Any] = {
        "ErrorEnvelope": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["message", "type", "param", "code"],
                    "properties": {
                        "message": {"type": "string"},
                        "type": {"type": "string"},
                        "param": {"type": ["string", "null"]},
                        "code": {"type": ["string", "null"]},
                    },
                }
            },
        }
    }
    response = _schema(TypeAdapter(Response), "Response", components)
    event = _schema(TypeAdapter(ResponseStreamEvent), "ResponseStreamEvent", components)
    # One server-sent event, as OpenAPI 3.2 describes a stream's items: its `event` name and
    # its `data`, the JSON of a ResponseStreamEvent; or the stream's last frame, `data: [DONE]`.
    sse_event = {
        "anyOf": [
            {"type": "object", "required": ["data"],
             "properties": {"data": {"const": "[DONE]"}}},
            {"type": "object", "required": ["event", "data"],
             "properties": {"event": {"type": "string"},
                            "data": {"type": "string", "contentMediaType": "application/json",
                                     "contentSchema": event}}},
        ]
    }  # fmt: skip
    from openai.types.responses.compacted_response import CompactedResponse

    compacted = _schema(TypeAdapter(CompactedResponse), "CompactedResponse", components)
    response_id = {"name": "response_id", "in": "path", "required": True,
                   "schema": {"type": "string"}}  # fmt: skip
    ok = {"description": "The response object.",
          "content": {"application/json": {"schema": response}}}  # fmt: skip
    streamed = {
        "description": "The response object (JSON), or its events (text/event-stream).",
        "content": {"application/json": {"schema": response},
                    "text/event-stream": {"schema": sse_event}},
    }  # fmt: skip
    errors = {"400": _error("Invalid request."), "401": _error("Invalid API key."),
              "404": _error("No such response for this API key.")}  # fmt: skip
    paths = {
        "/v1/responses": {
            "post": {
                "summary": "Create a response (background, streaming, or both).",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": CREATE_BODY}}},
                "responses": {"200": streamed, **errors,
                              "413": _error("Body too large."),
                              "429": _too_many("The queue is full, or the key is at one of "
                                               "its limits (--key-limit).")},
            },
            "get": {
                "summary": "List the caller's responses (an outlast extension; OpenAI has none).",
                "description": "Ordered by created_at then id; cursor paging with `after` (a "
                               "response id). Responses created with store=false are not listed.",
                "parameters": [
                    {"name": "after", "in": "query", "schema": {"type": "string", "minLength": 1},
                     "description": "List the responses after this one, in the chosen order."},
                    {"name": "limit", "in": "query",
                     "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
                    {"name": "order", "in": "query",
                     "schema": {"type": "string", "enum": ["asc", "desc"], "default": "desc"}},
                    {"name": "status", "in": "query", "schema": {"type": "string", "enum": [
                        "queued", "in_progress", "completed", "failed", "cancelled",
                        "incomplete"]}},
                ],
                "responses": {"200": {"description": "A page of responses.", "content": {
                    "application/json": {"schema": {"type": "object", "required": [
                        "object", "data", "first_id", "last_id", "has_more"], "properties": {
                        "object": {"const": "list"},
                        "data": {"type": "array", "items": response},
                        "first_id": {"type": ["string", "null"]},
                        "last_id": {"type": ["string", "null"]},
                        "has_more": {"type": "boolean"},
                        "ended_at": {"type": "object", "description": "When each listed "
                                     "response that has ended did (Unix seconds), by id.",
                                     "additionalProperties": {"type": "number"}}}}}}},
                    "400": errors["400"], "401": errors["401"]},
            },
        },
        "/v1/responses/{response_id}": {
            "get": {
                "summary": "Poll a response, or stream its events (stream=true).",
                "parameters": [
                    response_id,
                    {"name": "stream", "in": "query", "schema": {"type": "boolean"}},
                    {"name": "starting_after", "in": "query",
                     "schema": {"type": "integer", "minimum": 0, "maximum": MAX_SEQUENCE}},
                ],
                "responses": {"200": streamed, **errors},
            },
            "delete": {
                "summary": "Delete a response and its events.",
                "parameters": [response_id],
                "responses": {"200": {"description": "Deleted.", "content": {
                    "application/json": {"schema": {"type": "object", "properties": {
                        "id": {"type": "string"}, "object": {"const": "response.deleted"},
                        "deleted": {"type": "boolean"}}}}}}, **errors},
            },
        },
        "/v1/responses/{response_id}/cancel": {
            "post": {
                "summary": "Cancel a background response (idempotent).",
                "parameters": [response_id],
                "responses": {"200": ok, **errors},
            }
        },
        "/v1/responses/{response_id}/input_items": {
            "get": {
                "summary": "List a response's input items.",
                "parameters": [
                    response_id,
                    {"name": "after", "in": "query", "schema": {"type": "string", "minLength": 1}},
                    {"name": "limit", "in": "query",
                     "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
                    {"name": "order", "in": "query",
                     "schema": {"type": "string", "enum": ["asc", "desc"], "default": "desc"}},
                ],
                "responses": {"200": {"description": "A page of input items."}, **errors},
            }
        },
        "/v1/responses/compact": {
            "post": {
                "summary": "Compact a conversation (client.responses.compact()).",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["model"],
                    "description": "OpenAI's ResponseCompactParams: something to compact, "
                                   "input or previous_response_id (or both).",
                    "anyOf": [{"required": ["input"]}, {"required": ["previous_response_id"]}],
                    "propertyNames": {"enum": sorted(compact_params())},
                    "properties": {
                        "model": {"type": "string", "minLength": 1},
                        "input": {"anyOf": [{"type": "string"}, {"type": "array", "minItems": 1,
                                                                 "items": {"type": "object"}}]},
                        "instructions": {"type": ["string", "null"]},
                        "previous_response_id": {"type": "string"}}}}}},
                "responses": {"200": {"description": "The compacted conversation.", "content": {
                    "application/json": {"schema": compacted}}},
                    "400": _error("Invalid request."), "401": _error("Invalid API key."),
                    "413": _error("Body too large."),
                    "429": _too_many("The key is at its rate (--key-limit).")},
            }
        },
        "/healthz": {"get": {"summary": "Liveness and load.", "security": [],
                             "responses": {"200": {"description": "Serving."},
                                           "503": {"description": "Draining."}}}},
    }  # fmt: skip
    document = {
        "openapi": "3.1.0",
        "info": {"title": "outlast", "version": outlast.__version__,
                 "description": "The OpenAI Responses API with durable background mode."},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }  # fmt: skip
    return orjson.dumps(document)
