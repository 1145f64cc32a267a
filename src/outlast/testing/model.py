"""A small OpenAI-compatible model server, to try and test agents offline.

``outlast testmodel`` (or ``python -m outlast.testing.model``) serves it on
``http://127.0.0.1:8001/v1``: Chat Completions and Responses, streamed (SSE) or not, as the
``openai`` SDK and every framework outlast hosts call them. Unscripted, it answers
deterministically (:func:`offline_turn`): a request that offers function tools and has no tool
output yet gets a call of its first tool (arguments made from the tool's schema); any other gets
the text ``You said: <the last user text>``, or ``The tool said: <its output>`` after a tool call.
That is enough to drive a tool loop of the OpenAI Agents SDK, Agent Framework, LangGraph or the
upstream agent through one round trip, with no key and no network.

Tests script it instead, turn by turn, and read what it was sent: a real ASGI app (Starlette on
uvicorn, in a thread of the test process)::

    fake.script(
        [ToolCall("get_weather", {"city": "Paris"})],          # turn 1: the model calls a tool
        [Text(["It is ", "21 °C."])],                          # turn 2: it answers
    )

It records every request body, and notices a client that goes away before the stream ends
(``fake.wait_for_disconnect()``): that is how the tests see cancellation reach the framework's
in-flight HTTP call.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from outlast.testing import add_arguments

# -- the script -------------------------------------------------------------------------------


@dataclass
class Text:
    """Assistant text, streamed as these chunks, ``delay`` seconds before each; ``phase``: the
    message's phase (Responses only: ``commentary`` or ``final_answer``)."""

    chunks: list[str]
    delay: float = 0.0
    phase: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.chunks)


@dataclass
class ToolCall:
    """A function call; its JSON arguments are streamed in ``pieces`` deltas."""

    name: str
    arguments: dict[str, Any]
    pieces: int = 3
    call_id: str = field(default_factory=lambda: "call_" + secrets.token_hex(8))

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, separators=(",", ":"))

    def argument_chunks(self) -> list[str]:
        text = self.arguments_json
        size = max(1, -(-len(text) // self.pieces))
        return [text[i : i + size] for i in range(0, len(text), size)]


@dataclass
class Thinking:
    """Reasoning: a summary (Responses) or ``reasoning_content`` deltas (Chat Completions)."""

    chunks: list[str]

    @property
    def text(self) -> str:
        return "".join(self.chunks)


@dataclass
class Delay:
    """Pause the stream for ``seconds``."""

    seconds: float


@dataclass
class Fail:
    """End the stream with an error event carrying ``message`` (after what came before)."""

    message: str


Step = Text | ToolCall | Thinking | Delay | Fail
Turn = list[Step]


@dataclass
class Recorded:
    """One request the fake model received; ``completed``: its answer was sent to the end (a
    stream whose client went away, or whose server was killed, is not)."""

    path: str
    body: dict[str, Any]
    completed: bool = False


# -- the server -------------------------------------------------------------------------------


class FakeModel:
    """The fake model server: ``start()`` it, ``script()`` turns, point a client at ``base_url``."""

    def __init__(
        self,
        repeat: Turn | None = None,
        respond: Callable[[str, dict[str, Any]], Turn] | None = None,
    ) -> None:
        self.turns: list[Turn] = []
        self.repeat = repeat  # the turn answered when the script is used up (benchmarks)
        # Or, when the script is used up: a turn made from each request (offline_turn).
        self.respond = respond
        self.requests: list[Recorded] = []
        self.disconnects = 0
        self.finished_streams = 0
        self._lock = threading.Lock()
        self._disconnected = threading.Event()
        self._streaming = threading.Event()
        self._ids = itertools.count(1)
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- control (from the test's thread) ----------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *turns: Turn) -> FakeModel:
        """Append turns; each model request takes the next one."""
        with self._lock:
            self.turns.extend(turns)
        return self

    def reset(self) -> None:
        """Forget the script, the recorded requests and the disconnects (between tests)."""
        with self._lock:
            self.turns.clear()
            self.requests.clear()
            self.disconnects = self.finished_streams = 0
            self._disconnected.clear()
            self._streaming.clear()

    def wait_for_disconnect(self, timeout: float = 10.0) -> bool:
        """Whether a client closed its connection in the middle of a stream within ``timeout``."""
        return self._disconnected.wait(timeout)

    def wait_for_streaming(self, timeout: float = 10.0) -> bool:
        """Whether a stream has started sending within ``timeout``."""
        return self._streaming.wait(timeout)

    def start(self) -> FakeModel:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app(), log_level="warning", lifespan="off", loop="asyncio")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake model server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)

    def __enter__(self) -> FakeModel:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the app -----------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/responses", self._responses, methods=["POST"]),
                Route("/v1/responses/compact", self._compact, methods=["POST"]),
            ]
        )

    def completed_twice(self) -> list[Recorded]:
        """The requests that repeat a request answered to its end before them (same path and
        body): model calls made again although they had completed."""
        with self._lock:
            requests = list(self.requests)
        return [
            later
            for i, later in enumerate(requests)
            if any(
                earlier.completed and (earlier.path, earlier.body) == (later.path, later.body)
                for earlier in requests[:i]
            )
        ]

    def _next_turn(self, path: str, body: dict[str, Any]) -> tuple[Recorded, Turn | None]:
        with self._lock:
            recorded = Recorded(path, body)
            self.requests.append(recorded)
            if self.turns:
                return recorded, self.turns.pop(0)
        if self.respond is not None:
            return recorded, self.respond(path, body)
        return recorded, self.repeat

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._ids):04d}"

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        recorded, turn = self._next_turn("/chat/completions", body)
        if turn is None:
            return _no_turn()
        model = body.get("model", "fake")
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            frames = ChatStream(self._new_id("chatcmpl"), model, usage).frames(turn)
            return self._sse(frames, recorded)
        recorded.completed = True
        return JSONResponse(chat_completion(self._new_id("chatcmpl"), model, turn))

    async def _responses(self, request: Request) -> Response:
        body = await request.json()
        recorded, turn = self._next_turn("/responses", body)
        if turn is None:
            return _no_turn()
        stream = ResponsesStream(self._new_id("resp"), body, self._new_id)
        if body.get("stream"):
            return self._sse(stream.frames(turn), recorded)
        recorded.completed = True
        return JSONResponse(await stream.final(turn))

    async def _compact(self, request: Request) -> Response:
        """``/responses/compact``: one opaque compaction item naming how many items it got."""
        body = await request.json()
        with self._lock:
            self.requests.append(Recorded("/responses/compact", body, completed=True))
        items = body.get("input") or []
        count = len(items) if isinstance(items, list) else 1
        usage = {"input_tokens": 100, "output_tokens": 10, "total_tokens": 110,
                 "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                 "output_tokens_details": {"reasoning_tokens": 0}}  # fmt: skip
        return JSONResponse(
            {
                "id": self._new_id("resp"),
                "created_at": int(time.time()),
                "object": "response.compaction",
                "output": [
                    {
                        "id": self._new_id("cmp"),
                        "type": "compaction",
                        "encrypted_content": f"fake-compaction:{count}",
                    }
                ],
                "usage": usage,
            }
        )

    def _sse(self, frames: AsyncIterator[bytes], recorded: Recorded) -> StreamingResponse:
        async def watched() -> AsyncIterator[bytes]:
            done = False
            try:
                self._streaming.set()
                async for frame in frames:
                    yield frame
                done = True
            finally:
                # Starlette cancels this generator when the client disconnects mid-stream.
                with self._lock:
                    recorded.completed = done
                    if done:
                        self.finished_streams += 1
                    else:
                        self.disconnects += 1
                        self._disconnected.set()

        return StreamingResponse(watched(), media_type="text/event-stream")


def _no_turn() -> JSONResponse:
    return JSONResponse(
        {
            "error": {
                "message": "fake model: no scripted turn left",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        },
        status_code=400,
    )


def _data(payload: dict[str, Any] | str, event: str | None = None) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


# -- Chat Completions -------------------------------------------------------------------------


def _usage() -> dict[str, int]:
    return {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}


class ChatStream:
    """One streamed chat completion: ``chat.completion.chunk`` frames, then ``[DONE]``."""

    def __init__(self, completion_id: str, model: str, usage: bool) -> None:
        self.id = completion_id
        self.model = model
        self.usage = usage
        self.created = int(time.time())

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        return _data(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
        )

    async def frames(self, turn: Turn) -> AsyncIterator[bytes]:
        yield self.chunk({"role": "assistant", "content": ""})
        tool_index = 0
        for step in turn:
            if isinstance(step, Delay):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, Text):
                for piece in step.chunks:
                    if step.delay:
                        await asyncio.sleep(step.delay)
                    yield self.chunk({"content": piece})
            elif isinstance(step, Thinking):
                for piece in step.chunks:
                    yield self.chunk({"reasoning_content": piece})
            elif isinstance(step, ToolCall):
                yield self.chunk(
                    {
                        "tool_calls": [
                            {
                                "index": tool_index,
                                "id": step.call_id,
                                "type": "function",
                                "function": {"name": step.name, "arguments": ""},
                            }
                        ]
                    }
                )
                for piece in step.argument_chunks():
                    yield self.chunk(
                        {"tool_calls": [{"index": tool_index, "function": {"arguments": piece}}]}
                    )
                tool_index += 1
            elif isinstance(step, Fail):
                # What OpenAI-compatible servers send when a stream fails: an error object.
                yield _data({"error": {"message": step.message, "type": "server_error"}})
                return
        yield self.chunk({}, "tool_calls" if tool_index else "stop")
        if self.usage:
            yield _data(
                {
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "choices": [],
                    "usage": _usage(),
                }
            )
        yield _data("[DONE]")


def chat_completion(completion_id: str, model: str, turn: Turn) -> dict[str, Any]:
    """The same turn as one non-streamed ``chat.completion``."""
    text = "".join(s.text for s in turn if isinstance(s, Text))
    calls = [
        {
            "id": s.call_id,
            "type": "function",
            "function": {"name": s.name, "arguments": s.arguments_json},
        }
        for s in turn
        if isinstance(s, ToolCall)
    ]
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if calls else "stop",
            }
        ],
        "usage": _usage(),
    }


# -- Responses --------------------------------------------------------------------------------


class ResponsesStream:
    """One streamed Responses response: ``response.*`` events with sequence numbers."""

    def __init__(
        self, response_id: str, body: dict[str, Any], new_id: Callable[[str], str]
    ) -> None:
        self.body = body
        self.new_id = new_id
        self.seq = itertools.count()
        self.output: list[dict[str, Any]] = []
        self.response: dict[str, Any] = {
            "id": response_id,
            "object": "response",
            "created_at": int(time.time()),
            "status": "in_progress",
            "model": body.get("model", "fake"),
            "output": self.output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": body.get("tools") or [],
            "instructions": body.get("instructions"),
            "metadata": {},
            "error": None,
            "incomplete_details": None,
            "temperature": None,
            "top_p": None,
            "usage": None,
        }

    def event(self, kind: str, **fields: Any) -> bytes:
        return _data({"type": kind, "sequence_number": next(self.seq), **fields}, event=kind)

    def snapshot(self) -> dict[str, Any]:
        copy: dict[str, Any] = json.loads(json.dumps(self.response))
        return copy

    async def frames(self, turn: Turn) -> AsyncIterator[bytes]:
        yield self.event("response.created", response=self.snapshot())
        yield self.event("response.in_progress", response=self.snapshot())
        for step in turn:
            if isinstance(step, Delay):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, Fail):
                self.response["status"] = "failed"
                self.response["error"] = {"code": "server_error", "message": step.message}
                yield self.event("error", code="server_error", message=step.message, param=None)
                return
            else:
                async for frame in self._item(step):
                    yield frame
        self.response["status"] = "completed"
        self.response["usage"] = {
            "input_tokens": 10,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 20,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 30,
        }
        yield self.event("response.completed", response=self.snapshot())

    async def _item(self, step: Text | ToolCall | Thinking) -> AsyncIterator[bytes]:
        index = len(self.output)
        if isinstance(step, Text):
            item: dict[str, Any] = {
                "id": self.new_id("msg"),
                "type": "message",
                "role": "assistant",
                "status": "in_progress",
                "content": [],
            }
            if step.phase is not None:
                item["phase"] = step.phase
            self.output.append(item)
            yield self.event("response.output_item.added", output_index=index, item=item)
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            yield self.event(
                "response.content_part.added",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=part,
            )
            for piece in step.chunks:
                if step.delay:
                    await asyncio.sleep(step.delay)
                yield self.event(
                    "response.output_text.delta",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    delta=piece,
                    logprobs=[],
                )
            part = {**part, "text": step.text}
            yield self.event(
                "response.output_text.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                text=step.text,
                logprobs=[],
            )
            yield self.event(
                "response.content_part.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=part,
            )
            item.update(status="completed", content=[part])
        elif isinstance(step, ToolCall):
            item = {
                "id": self.new_id("fc"),
                "type": "function_call",
                "call_id": step.call_id,
                "name": step.name,
                "arguments": "",
                "status": "in_progress",
            }
            self.output.append(item)
            yield self.event("response.output_item.added", output_index=index, item=item)
            for piece in step.argument_chunks():
                yield self.event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=index,
                    delta=piece,
                )
            yield self.event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=index,
                name=step.name,
                arguments=step.arguments_json,
            )
            item.update(status="completed", arguments=step.arguments_json)
        else:
            item = {"id": self.new_id("rs"), "type": "reasoning", "summary": []}
            self.output.append(item)
            yield self.event("response.output_item.added", output_index=index, item=item)
            yield self.event(
                "response.reasoning_summary_part.added",
                item_id=item["id"],
                output_index=index,
                summary_index=0,
                part={"type": "summary_text", "text": ""},
            )
            for piece in step.chunks:
                yield self.event(
                    "response.reasoning_summary_text.delta",
                    item_id=item["id"],
                    output_index=index,
                    summary_index=0,
                    delta=piece,
                )
            yield self.event(
                "response.reasoning_summary_text.done",
                item_id=item["id"],
                output_index=index,
                summary_index=0,
                text=step.text,
            )
            part = {"type": "summary_text", "text": step.text}
            yield self.event(
                "response.reasoning_summary_part.done",
                item_id=item["id"],
                output_index=index,
                summary_index=0,
                part=part,
            )
            item["summary"] = [part]
        yield self.event("response.output_item.done", output_index=index, item=item)

    async def final(self, turn: Turn) -> dict[str, Any]:
        """The same turn as one non-streamed response object."""
        async for _ in self.frames([s for s in turn if not isinstance(s, Delay | Fail)]):
            pass
        return self.snapshot()


# -- the offline model ------------------------------------------------------------------------


def _example(schema: Any) -> Any:
    """A value of a JSON schema's type, the same every time."""
    kind = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if isinstance(schema, dict) and schema.get("enum"):
        return schema["enum"][0]
    return {"string": "example", "integer": 1, "number": 1, "boolean": True, "array": [],
            "object": {}}.get(kind or "", "example")  # fmt: skip


def _tool_arguments(parameters: Any) -> dict[str, Any]:
    if not isinstance(parameters, dict):
        return {}
    properties = parameters.get("properties") or {}
    required = parameters.get("required") or list(properties)
    return {name: _example(properties.get(name)) for name in required if name in properties}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text"))
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _words(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def offline_turn(path: str, body: dict[str, Any]) -> Turn:
    """The unscripted answer to a request: a call of its first function tool while it has no
    tool output, else ``You said: …`` (or ``The tool said: …`` right after a tool's output)."""
    if path == "/chat/completions":
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        tools = [t.get("function") or {} for t in body.get("tools") or [] if isinstance(t, dict)]
        last = messages[-1] if messages else {}
        answered = last.get("role") == "tool"
        tool_output = _text_of(last.get("content")) if answered else ""
        users = [m for m in messages if m.get("role") == "user"]
        user_text = _text_of(users[-1].get("content")) if users else ""
    else:
        given = body.get("input")
        items = [{"role": "user", "content": given}] if isinstance(given, str) else given or []
        items = [i for i in items if isinstance(i, dict)]
        tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
        tools = [t for t in tools if t.get("type") == "function"]
        outputs = [i for i in items if i.get("type") == "function_call_output"]
        answered = bool(outputs) and items.index(outputs[-1]) > max(
            (n for n, i in enumerate(items) if i.get("role") == "user"), default=-1
        )
        tool_output = str(outputs[-1].get("output")) if answered else ""
        users = [i for i in items if i.get("role") == "user"]
        user_text = _text_of(users[-1].get("content")) if users else ""
    named = [t for t in tools if isinstance(t.get("name"), str)]
    if named and not answered:
        tool = named[0]
        return [ToolCall(tool["name"], _tool_arguments(tool.get("parameters")),
                         call_id=f"call_{len(user_text):04d}")]  # fmt: skip
    if answered:
        return [Text(_words(f"The tool said: {tool_output}"))]
    return [Text(_words(f"You said: {user_text}"))]


def main(argv: list[str] | None = None) -> None:
    """Serve the offline model (``outlast testmodel``, ``python -m outlast.testing.model``)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="outlast testmodel",
        description="An OpenAI-compatible model server for trying agents offline: deterministic "
        "text, and a call of the first tool when a request offers tools.",
    )
    add_arguments(parser)
    serve(parser.parse_args(argv))


def serve(args: Any) -> None:
    """Run the server of parsed ``outlast testmodel`` arguments until interrupted."""
    if args.deltas is not None:
        fake = FakeModel(repeat=[Text(["abcdefghijklmno "] * args.deltas)])
    else:
        fake = FakeModel(respond=offline_turn)
    print(f"outlast testmodel: serving on http://{args.host}:{args.port}/v1", flush=True)
    config = uvicorn.Config(fake.app(), host=args.host, port=args.port, log_level="warning",
                            lifespan="off")  # fmt: skip
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
