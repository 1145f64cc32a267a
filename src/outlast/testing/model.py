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

This module is the server and the command; a turn's steps are :mod:`outlast.testing.script`,
the two APIs' answers :mod:`outlast.testing.chat` and :mod:`outlast.testing.responses`, and the
unscripted answer :mod:`outlast.testing.offline`. Every name is importable from here.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from outlast.testing import add_arguments
from outlast.testing.chat import ChatStream, chat_completion
from outlast.testing.offline import offline_turn
from outlast.testing.responses import ResponsesStream
from outlast.testing.script import Delay, Fail, Step, Text, Thinking, ToolCall, Turn

__all__ = [
    "ChatStream", "Delay", "Fail", "FakeModel", "Recorded", "ResponsesStream", "Step", "Text",
    "Thinking", "ToolCall", "Turn", "chat_completion", "main", "offline_turn", "serve",
]  # fmt: skip


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
