"""The baseline for ``bench/run.py``: the same endpoints, served as simply as possible.

A minimal Starlette app under uvicorn (the same stack and the same uvicorn defaults outlast uses:
uvloop and httptools when installed). It keeps everything in memory and stores nothing:

- ``POST /v1/responses`` with ``background:true``: starts the run as an asyncio task and, with
  ``stream:true``, streams its events; without ``stream``, answers the queued response object.
- ``GET /v1/responses/{id}``: the response object from a dict, serialised per request.
- ``GET /v1/responses/{id}?stream=true&starting_after=N``: replays the in-memory event list after
  ``N`` and then follows the run live until its terminal event.
- ``POST /v1/responses/{id}/cancel``: cancels the run (used by the bench to clean up).
- ``GET /healthz``.

The agent has the same semantics as ``outlast.agents.synthetic``: the prompt reads
``deltas=N size=B delay=S``; it yields ``N`` text deltas of ``B`` bytes, sleeping ``S`` seconds
before each (no sleep when ``S`` is 0). The events are the same as outlast's for one text message:
``response.created``, ``response.queued``, ``response.in_progress``, ``response.output_item.added``,
``response.content_part.added``, ``response.output_text.delta`` x N, ``response.output_text.done``,
``response.content_part.done``, ``response.output_item.done``, ``response.completed``, each with
``sequence_number``. Deliberately straightforward: each event is serialised once with the
standard library's ``json`` when it is made, and every reader sends it as one SSE frame (one
ASGI ``send`` per event, no batching). ``BASELINE_JSON=orjson`` switches the serialiser.

Run it alone with ``.venv/bin/python bench/baseline.py --port 8001``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from outlast.agents.base import AgentRequest
from outlast.agents.synthetic import agent as synthetic_agent
from outlast.protocol.outputs import AgentOutput

if os.environ.get("BASELINE_JSON") == "orjson":
    import orjson

    def dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

else:

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()


TERMINAL = frozenset({"response.completed", "response.failed", "response.incomplete"})


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


# -- the synthetic agent: the very one outlast hosts, so only the serving differs ------------------


def agent(prompt: str) -> AsyncIterator[AgentOutput]:
    request = AgentRequest(response_id="", model="", input=[{"role": "user", "content": prompt}])
    return synthetic_agent(request)


# -- one run, in memory -------------------------------------------------------------------------


class Run:
    def __init__(self, fields: dict[str, Any], prompt: str) -> None:
        self.fields = fields
        self.prompt = prompt
        self.output: list[dict[str, Any]] = []
        self.chunks: list[str] = []
        self.frames: list[bytes] = []  # every event's SSE frame, in sequence order
        self.waiters: list[asyncio.Future[None]] = []
        self.finished = False
        self.task: asyncio.Task[None] | None = None

    @property
    def id(self) -> str:
        return str(self.fields["id"])

    def snapshot(self) -> dict[str, Any]:
        output = self.output
        if self.chunks and output:
            item = dict(output[-1])
            item["content"] = [{**item["content"][0], "text": "".join(self.chunks)}]
            output = [*output[:-1], item]
        return {**self.fields, "output": output}

    def emit(self, payload: dict[str, Any]) -> None:
        payload["sequence_number"] = len(self.frames)
        kind = payload["type"]
        self.frames.append(b"event: " + kind.encode() + b"\ndata: " + dumps(payload) + b"\n\n")
        if kind in TERMINAL:
            self.finished = True
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def lifecycle(self, kind: str) -> None:
        self.emit({"type": kind, "response": self.snapshot()})

    async def execute(self) -> None:
        self.fields["status"] = "in_progress"
        self.lifecycle("response.in_progress")
        item_id = new_id("msg")
        item: dict[str, Any] = {
            "id": item_id,
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        self.output.append(item)
        self.emit({"type": "response.output_item.added", "output_index": 0, "item": item})
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        item["content"].append(part)
        self.emit(
            {
                "type": "response.content_part.added",
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
                "part": part,
            }
        )
        status = "completed"
        try:
            async for delta in agent(self.prompt):
                self.chunks.append(delta)
                self.emit(
                    {
                        "type": "response.output_text.delta",
                        "item_id": item_id,
                        "output_index": 0,
                        "content_index": 0,
                        "delta": delta,
                        "logprobs": [],
                    }
                )
        except asyncio.CancelledError:
            status = "cancelled"
        text = "".join(self.chunks)
        self.chunks = []
        part = {**part, "text": text}
        item["content"][0] = part
        self.emit(
            {
                "type": "response.output_text.done",
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
                "text": text,
                "logprobs": [],
            }
        )
        self.emit(
            {
                "type": "response.content_part.done",
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
                "part": part,
            }
        )
        item["status"] = "completed" if status == "completed" else "incomplete"
        self.emit({"type": "response.output_item.done", "output_index": 0, "item": item})
        self.fields["status"] = status
        if status == "completed":
            self.fields["completed_at"] = int(time.time())
            self.lifecycle("response.completed")
        else:
            self.lifecycle("response.incomplete")

    async def follow(self, after: int) -> AsyncIterator[bytes]:
        """Every frame after ``after``, then live ones until the terminal event."""
        index = after + 1
        loop = asyncio.get_running_loop()
        while True:
            frames = self.frames
            while index < len(frames):
                yield frames[index]
                index += 1
            if self.finished:
                return
            waiter: asyncio.Future[None] = loop.create_future()
            self.waiters.append(waiter)
            await waiter


RUNS: dict[str, Run] = {}


# -- HTTP ---------------------------------------------------------------------------------------


def error(status: int, message: str, param: str | None = None, code: str | None = None) -> Response:
    body = {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": code,
        }
    }
    return Response(dumps(body), status_code=status, media_type="application/json")


def json_response(obj: Any) -> Response:
    return Response(dumps(obj), media_type="application/json")


def sse(frames: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(
        frames,
        media_type="text/event-stream",
        headers={"cache-control": "no-cache"},
    )


async def create(request: Request) -> Response:
    body = json.loads(await request.body())
    if not body.get("background"):
        return error(400, "The baseline serves background responses only.", "background")
    prompt = body.get("input") or ""
    if not isinstance(prompt, str):
        return error(400, "The baseline takes a string input.", "input")
    fields: dict[str, Any] = {
        "id": new_id("resp"),
        "object": "response",
        "created_at": int(time.time()),
        "status": "queued",
        "background": True,
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "metadata": body.get("metadata") or {},
        "model": body.get("model", ""),
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "store": True,
        "temperature": None,
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "truncation": "disabled",
        "usage": None,
    }
    run = Run(fields, prompt)
    RUNS[run.id] = run
    run.lifecycle("response.created")
    run.lifecycle("response.queued")
    run.task = asyncio.create_task(run.execute())
    if body.get("stream"):
        return sse(run.follow(-1))
    return json_response(run.snapshot())


async def get(request: Request) -> Response:
    response_id = request.path_params["response_id"]
    run = RUNS.get(response_id)
    if run is None:
        return error(
            404, f"Response with id '{response_id}' not found.", None, "response_not_found"
        )
    if request.query_params.get("stream") == "true":
        value = request.query_params.get("starting_after", "-1")
        try:
            after = int(value)
        except ValueError:
            return error(400, "Invalid 'starting_after'.", "starting_after")
        return sse(run.follow(after))
    return json_response(run.snapshot())


async def cancel(request: Request) -> Response:
    response_id = request.path_params["response_id"]
    run = RUNS.get(response_id)
    if run is None:
        return error(
            404, f"Response with id '{response_id}' not found.", None, "response_not_found"
        )
    if run.task is not None and not run.task.done():
        run.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run.task
    return json_response(run.snapshot())


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok", "runs": len(RUNS)})


app = Starlette(
    routes=[
        Route("/v1/responses", create, methods=["POST"]),
        Route("/v1/responses/{response_id}", get, methods=["GET"]),
        Route("/v1/responses/{response_id}/cancel", cancel, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    # The same uvicorn configuration as ``outlast serve`` (defaults; no access log).
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
