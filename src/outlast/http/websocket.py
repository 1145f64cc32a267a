"""WebSocket mode on ``/v1/responses``: what the ``openai`` SDK's ``client.responses.connect()``
speaks.

One connection carries many responses. The client sends ``response.create`` (the body of
``POST /v1/responses`` without ``stream`` and ``background``, plus the WebSocket-only
``stream_id``) and ``response.steer``; the server sends each response's events, one event per
text frame, the same bytes the store holds and SSE sends, and steering's
``response.steer.accepted`` / ``.pending`` / ``.failed``. Errors are ``error`` events in the
WebSocket shape (``{"type": "error", "status", "error": {type, code, message, param}}``, the
SDK's ``ResponseWsError``), and the connection stays open after one.

- **Lanes.** Creates with the same ``stream_id`` (or none) run one after another, in order;
  different lanes run side by side. Each event of a response created with a ``stream_id``
  carries it.
- **The engine is the same.** A response created here (``store: true``) is a background
  response (``background: true``; OpenAI's are foreground, and the client may not ask for
  background mode): stored, pollable, replayable with ``GET …?stream=true`` and cancellable
  over HTTP, and, with steps, resumed after a crash like any other. A dropped connection does
  not cancel it: it runs to its end, so a client that reconnects reads what it missed over HTTP
  or continues from it (``previous_response_id``; a continuation of a response still running
  waits for it).
- **``store: false``.** Such a response is not readable later, not even here, except as the
  ``previous_response_id`` of the connection's next create: the connection keeps the most recent
  one's conversation in memory (OpenAI's rule), and loses it when it closes. Any other unknown
  or unreadable one is ``previous_response_not_found``. It is a foreground response, so a
  dropped connection cancels it, as it would a foreground HTTP stream: nothing could read it.
- **The connection limit.** After ``--websocket-connection-limit`` (60 min, OpenAI's), once no
  response is streaming, the server sends ``websocket_connection_limit_reached`` and closes with
  1001; a server that begins to shut down closes idle connections with 1012. Both are codes the
  SDK reconnects after (with ``on_reconnecting``), sending what it queued meanwhile. A create
  that arrives once the limit is reached gets that error rather than being dropped.
- **Keys** are checked at the upgrade (:mod:`outlast.http.auth`): a bad one gets the HTTP 401.

This module is the endpoint and its connections (lanes, the limit, creates, steers); what the
messages look like is :mod:`outlast.http.ws_messages`, and the frames written straight to
uvicorn's transport :mod:`outlast.http.ws_frames`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from outlast.asgi.owner import OWNER_SCOPE_KEY
from outlast.engine import Engine, RunHandle
from outlast.engine.steering import Settlement, SteerRefused
from outlast.http.errors import APIError, invalid
from outlast.http.request import parse_create
from outlast.http.ws_frames import DirectFrames
from outlast.http.ws_messages import (
    STEER_KEYS,
    SteerInvalid,
    api_error,
    error_event,
    steer_items,
    ws_error,
)
from outlast.protocol.events import Event
from outlast.store.base import StoreUnavailable

log = logging.getLogger("outlast.http")

# Close codes (RFC 6455): the SDK reconnects after both.
GOING_AWAY = 1001
SERVICE_RESTART = 1012
# How often a connection past its limit, or on a draining server, looks whether it is idle.
IDLE_POLL = 0.1


class _Closing(Exception):
    """The connection takes no more creates (its limit, or the server shutting down)."""

    def __init__(self, error: APIError) -> None:
        super().__init__(error.message)
        self.error = error


LIMIT_REACHED = APIError(
    400,
    "Responses websocket connection limit reached. Create a new websocket connection to continue.",
    code="websocket_connection_limit_reached",
)


class Lane:
    """The creates of one ``stream_id``, processed in order."""

    def __init__(self, connection: Connection, stream_id: str | None) -> None:
        self.connection = connection
        self.stream_id = stream_id
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.busy = False
        self.task = asyncio.create_task(self._work(), name=f"ws-lane-{stream_id}")

    @property
    def idle(self) -> bool:
        return not self.busy and self.queue.empty()

    async def _work(self) -> None:
        while True:
            body = await self.queue.get()
            self.busy = True
            try:
                await self.connection.create(body, self.stream_id)
            except asyncio.CancelledError:
                raise
            except _Closing as exc:
                await self.connection.send_one(error_event(exc.error, self.stream_id))
            except Exception as exc:
                error = api_error(exc)
                if error.status >= 500:
                    log.exception("WebSocket response.create failed", exc_info=exc)
                await self.connection.send_one(error_event(error, self.stream_id))
            finally:
                self.busy = False


class Connection:
    """One WebSocket on ``/v1/responses``: its lanes, its ``store: false`` memory, its steers."""

    def __init__(self, websocket: WebSocket, send: Send, engine: Engine, owner: str,
                 limit: float) -> None:  # fmt: skip
        self.websocket = websocket
        self._send = send
        self.engine = engine
        self.owner = owner
        self.limit = limit
        self.lanes: dict[str | None, Lane] = {}
        self._lock = asyncio.Lock()
        self.closing: APIError | None = None
        # The most recent store:false response of this connection, and its conversation.
        self.local: dict[str, list[dict[str, Any]]] = {}
        # The responses this connection created or streams: the ones it may steer.
        self.mine: set[str] = set()
        self._seq = 0
        self._frames = DirectFrames.of(send)

    # -- sending ---------------------------------------------------------------------------

    async def send_one(self, data: bytes) -> None:
        async with self._lock:
            await self._send({"type": "websocket.send", "text": data.decode()})

    async def _send_events(self, batch: list[Event], stream_id: str | None) -> None:
        send = self._send
        async with self._lock:
            if self._frames is not None and await self._frames.write(batch, stream_id):
                return
            if stream_id is None:
                for event in batch:
                    data = event.data if event.type != "error" else ws_error(event.data)
                    await send({"type": "websocket.send", "text": data.decode()})
                return
            # The lane's id goes at the end of each event's JSON, the stored bytes otherwise as
            # they are.
            tail = b',"stream_id":' + orjson.dumps(stream_id) + b"}"
            for event in batch:
                data = event.data if event.type != "error" else ws_error(event.data)
                await send({"type": "websocket.send", "text": (data[:-1] + tail).decode()})

    def _steer_event(self, event: dict[str, Any]) -> bytes:
        # Steering events are the connection's, not a response's: numbered on the connection.
        event["sequence_number"] = self._seq
        self._seq += 1
        return orjson.dumps(event)

    # -- the session -------------------------------------------------------------------------

    async def serve(self, receive: Receive) -> None:
        """Read client events until the client (or the server) closes the connection."""
        watcher = asyncio.create_task(self._watch(), name="ws-limit")
        try:
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "websocket.disconnect":
                    return
                if kind != "websocket.receive":
                    continue
                raw = message.get("text")
                if raw is None:
                    raw = message.get("bytes") or b""
                await self._dispatch(raw)
        finally:
            watcher.cancel()
            for lane in self.lanes.values():
                lane.task.cancel()
            tasks = [lane.task for lane in self.lanes.values()] + [watcher]
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _dispatch(self, raw: str | bytes) -> None:
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:
            await self.send_one(error_event(invalid("The message is not valid JSON.",
                                                    code="invalid_json")))  # fmt: skip
            return
        kind = event.get("type") if isinstance(event, dict) else None
        if kind == "response.create":
            assert isinstance(event, dict)
            stream_id = event.get("stream_id")
            if stream_id is not None and not isinstance(stream_id, str):
                error = invalid("Invalid type for 'stream_id': expected a string.",
                                param="stream_id", code="invalid_type")  # fmt: skip
                await self.send_one(error_event(error))
                return
            lane = self.lanes.get(stream_id)
            if lane is None:
                lane = self.lanes[stream_id] = Lane(self, stream_id)
            lane.queue.put_nowait(event)
        elif kind == "response.steer":
            assert isinstance(event, dict)
            await self.steer(event)
        else:
            shown = kind if isinstance(kind, str) else None
            error = invalid(
                f"Unknown event type {shown!r}: expected 'response.create' or 'response.steer'."
                if shown is not None
                else "The message must be a JSON object with a 'type'.",
                param="type",
            )
            await self.send_one(error_event(error))

    async def _watch(self) -> None:
        """Close the connection at its limit (or when the server drains), once it is idle."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limit
        code = GOING_AWAY
        while True:
            await asyncio.sleep(min(IDLE_POLL * 5, max(0.0, deadline - loop.time())))
            if loop.time() >= deadline:
                self.closing = LIMIT_REACHED
                break
            if not self.engine.accepting:
                code = SERVICE_RESTART
                self.closing = APIError(
                    503,
                    "The server is shutting down; reconnect to continue.",
                    type="server_error",
                    code="server_shutting_down",
                )
                break
        while not all(lane.idle for lane in self.lanes.values()):
            await asyncio.sleep(IDLE_POLL)
        if code == GOING_AWAY:
            await self.send_one(error_event(LIMIT_REACHED))
        async with self._lock:
            await self._send({"type": "websocket.close", "code": code,
                              "reason": str(self.closing.code)})  # fmt: skip

    # -- response.create ---------------------------------------------------------------------

    async def create(self, event: dict[str, Any], stream_id: str | None) -> None:
        """One ``response.create``: create the response and stream it (and its successors)."""
        if self.closing is not None:
            raise _Closing(self.closing)
        body = {k: v for k, v in event.items() if k not in ("type", "stream_id", "stream")}
        if body.get("background"):
            # OpenAI's rule. A stored response created here is a background one all the same.
            raise invalid("Background mode is not supported over WebSocket: a stored response "
                          "created here runs in the background already.",
                          param="background", code="unsupported_parameter")  # fmt: skip
        body.pop("background", None)
        generate = body.pop("generate", None)
        if generate is not None and generate is not True:
            raise invalid("Only 'generate: true' is supported: outlast has no warm-up request.",
                          param="generate", code="unsupported_value")  # fmt: skip
        spec = parse_create(body)
        # A stored response is created as a background one: it outlives its socket, and can be
        # replayed (GET ?stream=true) and cancelled over HTTP like any other. A store:false one
        # cannot be (nothing can read it once the socket is gone): it stays in the foreground,
        # cancelled when its socket goes away, as a foreground HTTP stream is.
        spec = dataclasses.replace(spec, stream=True, background=spec.store)
        previous = spec.previous_response_id
        history = self.local.get(previous) if previous is not None else None
        if previous is not None:
            running = self.engine.live(previous, self.owner)
            if running is not None:
                # A continuation of a response still running (from another lane, or from before
                # a reconnect) waits for it, as the next create on its lane would.
                await running.done.wait()
        # Shielded: once asked for, the response is created (with the steering input left
        # pending on its predecessor: Engine.create) even if the socket goes away meanwhile; its
        # subscription is then given back.
        creating = asyncio.ensure_future(
            self.engine.create(spec, self.owner, subscribe=True, history=history)
        )
        try:
            handle = await asyncio.shield(creating)
        except asyncio.CancelledError:
            creating.add_done_callback(self._give_back)
            raise
        await self._stream(handle, stream_id)

    def _give_back(self, creating: asyncio.Future[RunHandle]) -> None:
        if not creating.cancelled() and creating.exception() is None:
            handle = creating.result()
            self.engine.abandon(handle)  # a foreground (store:false) one only
            self.engine.release(handle)

    async def _stream(self, handle: RunHandle | None, stream_id: str | None) -> None:
        """Stream a response created here, then whatever successor its steering started."""
        steering = self.engine.steering
        while handle is not None:
            response_id = handle.id
            self.mine.add(response_id)
            steering.watch(response_id)
            stream = self.engine.stream_run(handle)
            try:
                async for batch in stream:
                    if batch:
                        await self._send_events(batch, stream_id)
                await self._remember(handle)
                settlement = await steering.settlement(response_id)
            except asyncio.CancelledError:
                # The socket went away: a store:false response is cancelled with it (a stored
                # one, a background response, runs on: Engine.abandon leaves it).
                self.engine.abandon(handle)
                raise
            finally:
                steering.unwatch(response_id)
                # The stream counts against the key's open streams until it is closed; and a
                # stream cancelled before its first read still holds the hub subscription.
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    await aclose()
                self.engine.release(handle)
            handle = await self._settled(response_id, settlement, stream_id)

    async def _remember(self, handle: RunHandle) -> None:
        """Keep a store:false response's conversation: the next create may continue it."""
        run = handle.run
        if run.store:
            return
        # A run executed by another replica has its output in the store, not in this one's state.
        output = orjson.loads(await self.engine.final(handle)).get("output") if run.remote else None
        # Only the most recent one (OpenAI's rule), so a connection's memory stays bounded.
        conversation = [*map(dict, run.agent_request.input), *(output or run.state.output)]
        self.local = {handle.id: conversation}

    async def _settled(
        self, response_id: str, settlement: Settlement | None, stream_id: str | None
    ) -> RunHandle | None:
        """Tell the client what became of the response's steers; the successor, if any."""
        if settlement is None:
            return None
        lane = {"stream_id": stream_id} if stream_id is not None else {}
        for steer in settlement.pending:
            await self.send_one(self._steer_event({
                "type": "response.steer.pending",
                "reason": "waiting_for_required_input",
                "required_input": settlement.required_input,
                "steer": {"id": steer.id, "previous_response_id": response_id},
                **lane,
            }))  # fmt: skip
        for steer, code, message in settlement.failed:
            await self.send_one(self._failed(steer.input, response_id, code, message, steer.id,
                                             lane))  # fmt: skip
        return settlement.successor

    def _failed(self, input: Any, response_id: Any, code: str, message: str,
                steer_id: str | None, lane: dict[str, Any]) -> bytes:  # fmt: skip
        steer: dict[str, Any] = {"input": input, "previous_response_id": response_id}
        if steer_id is not None:
            steer["id"] = steer_id
        return self._steer_event({
            "type": "response.steer.failed",
            "error": {"code": code, "message": message, "type": "invalid_request_error"},
            "steer": steer,
            **lane,
        })  # fmt: skip

    # -- response.steer ----------------------------------------------------------------------

    async def steer(self, event: dict[str, Any]) -> None:
        """One ``response.steer``: accepted (stored), or failed with the SDK's code."""
        target = event.get("previous_response_id")
        raw_input = event.get("input")

        async def failed(code: str, message: str) -> None:
            # No steer id: none was allocated.
            await self.send_one(self._failed(raw_input, target, code, message, None, {}))

        extra = set(event) - STEER_KEYS
        if extra:
            await failed("invalid_input", f"response.steer takes only type, "
                         f"previous_response_id and input, not {sorted(extra)}.")  # fmt: skip
            return
        if not isinstance(target, str) or not target:
            await failed("invalid_input", "'previous_response_id' must be a response id.")
            return
        try:
            items = steer_items(raw_input)
        except SteerInvalid as exc:
            await failed("invalid_input", str(exc))
            return
        if target not in self.mine:
            await failed("response_not_found",
                         f"Response '{target}' is not available on this connection.")  # fmt: skip
            return
        try:
            steer = await self.engine.steer(target, self.owner, items)
        except SteerRefused as exc:
            await failed(exc.code, exc.message)
            return
        except StoreUnavailable:
            await failed("response_not_active", "The server could not store the input; retry.")
            return
        await self.send_one(self._steer_event({
            "type": "response.steer.accepted",
            "steer": {"id": steer.id, "previous_response_id": target},
        }))  # fmt: skip


class ResponsesSocket:
    """The ASGI endpoint of WebSocket mode (a plain ASGI app, so that frames go straight to
    the server's ``send``: 20,000 deltas are 20,000 frames)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        app = scope["app"]
        engine: Engine = app.state.engine
        limit: float = app.state.settings.websocket_connection_limit
        await websocket.accept()
        connection = Connection(websocket, send, engine, scope[OWNER_SCOPE_KEY], limit)
        with contextlib.suppress(OSError):
            await connection.serve(receive)
