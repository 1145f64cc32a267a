"""The console's own endpoints, under ``/v1/console/`` (keyed, scoped to the caller's key).

Everything else the page shows comes from the public Responses API. Two reads add what that API
has no field for: counts per status and recent throughput (the overview), and per-run facts
kept beside the response object (the replica executing it, its attempt, its number of events).
One write adds what only a WebSocket can otherwise do: steering a running response
(``response.steer``, which a socket may send only for responses it created or streams, and which
a browser cannot send with an ``Authorization`` header).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from outlast.asgi.owner import OWNER_SCOPE_KEY
from outlast.engine import Engine
from outlast.engine.errors import NotFound
from outlast.engine.steering import SteerRefused
from outlast.http.errors import APIError, invalid
from outlast.http.replies import json_response
from outlast.http.routes import read_json
from outlast.http.ws_messages import steer_items
from outlast.protocol.events import TERMINAL_STATUSES

# The overview's throughput: responses ended per minute over the last 15 minutes.
THROUGHPUT_BUCKET = 60.0
THROUGHPUT_BUCKETS = 15
# At most one listing page of runs per request (the listing's own limit).
MAX_IDS = 100
# The runs list shows the beginning of each run's input.
PREVIEW_CHARS = 120
# A refused steer: 429 when the response has too many queued already (it may take more once it
# reaches a boundary), 409 otherwise (the response's state does not allow it).
STEER_REFUSED_STATUS = {"too_many_pending_steers": 429}


def input_preview(input_json: bytes) -> str:
    """The beginning of the first text among a response's input items."""
    items = orjson.loads(input_json)
    for item in items if isinstance(items, list) else []:
        content = item.get("content") if isinstance(item, dict) else None
        parts = [content] if isinstance(content, str) else content or []
        for part in parts:
            text = (
                part
                if isinstance(part, str)
                else part.get("text")
                if isinstance(part, dict)
                else None
            )
            if isinstance(text, str) and text.strip():
                text = " ".join(text.split())
                return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"
    return ""


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _owner(request: Request) -> str:
    owner: str = request.scope[OWNER_SCOPE_KEY]
    return owner


async def overview(request: Request) -> Response:
    """The caller's runs per status, how many ended in each of the last minutes, and this
    server's own load (every owner's runs together, as ``/healthz`` shows them)."""
    engine = _engine(request)
    now = time.time()
    since = now - THROUGHPUT_BUCKET * THROUGHPUT_BUCKETS
    counts = await engine.store.response_counts(
        _owner(request), since=since, bucket=THROUGHPUT_BUCKET
    )
    ended = [counts.ended.get(i, 0) for i in range(THROUGHPUT_BUCKETS)]
    return json_response(
        {
            "object": "console.overview",
            "at": now,
            "counts": counts.by_status,
            "running": counts.by_status.get("in_progress", 0),
            "queued": counts.by_status.get("queued", 0),
            "throughput": {"bucket_seconds": THROUGHPUT_BUCKET, "since": since, "ended": ended},
            "server": {
                "running": engine.running,
                "queued": engine.queued,
                "max_running": engine.settings.max_running,
                "worker": engine.worker_id,
                "accepting": engine.accepting,
                "events_committed": engine.writer.stats.events,
            },
        }
    )


async def runs(request: Request) -> Response:
    """``?ids=a,b,…``: for each of the caller's responses among them, the facts the response
    object does not carry. Ids that name no response of the caller are left out."""
    text = request.query_params.get("ids", "")
    ids = [part for part in text.split(",") if part]
    if not ids or len(ids) > MAX_IDS:
        raise invalid(
            f"Invalid 'ids': expected 1 to {MAX_IDS} comma-separated response ids.", param="ids"
        )
    engine = _engine(request)
    owner = _owner(request)
    data: list[dict[str, Any]] = []
    for response_id in dict.fromkeys(ids):
        try:
            record = await engine.record(response_id, owner)
        except NotFound:
            continue
        run = engine.live(response_id, owner)
        data.append(
            {
                "id": response_id,
                "status": record.status if run is None else run.state.status,
                "worker": record.worker_id,
                "attempt": record.attempt if run is None else run.attempt,
                # A run executing here counts its events as they are made; any other one as of
                # its last stored snapshot (every event, once it has ended).
                "events": record.snapshot_seq + 1 if run is None else run.normalizer.next_seq,
                "ended_at": record.ended_at,
                "background": record.background,
                "cancel_requested": record.cancel_requested,
                "input_preview": input_preview(record.input),
                # Steering input is taken by the replica executing the run, and only there.
                "steerable": run is not None and not run.remote,
            }
        )
    return json_response({"object": "list", "data": data})


async def steer(request: Request) -> Response:
    """``POST /v1/console/runs/{id}/steer`` with ``{"input": "text"}``: more user input for the
    caller's running response, as a WebSocket's ``response.steer`` gives it (see WebSocket mode's
    docs). Answered once the input is stored: at the response's next safe output boundary it
    ends ``incomplete`` (reason ``steered``) and a successor response carrying the input starts
    by itself, continuing it (``previous_response_id``); a response that ends waiting for input
    keeps it for its continuation. Refusals carry the SDK's steering error codes."""
    response_id: str = request.path_params["response_id"]
    body = await read_json(request)
    text = body.get("input") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise invalid("'input' must be a non-empty string.", param="input")
    engine, owner = _engine(request), _owner(request)
    # Another key's response and one that never existed are both not found, as everywhere.
    record = await engine.record(response_id, owner)
    if engine.live(response_id, owner) is None and record.status not in TERMINAL_STATUSES:
        # Running, but not known here: another replica created and executes it.
        raise APIError(
            409,
            f"Response '{response_id}' executes on another replica; it cannot be steered from "
            "this one.",
            code="steering_not_supported",
        )
    try:
        accepted = await engine.steer(response_id, owner, steer_items(text))
    except SteerRefused as exc:
        raise APIError(
            STEER_REFUSED_STATUS.get(exc.code, 409), exc.message, code=exc.code
        ) from None
    return json_response(
        {"object": "console.steer", "id": accepted.id, "previous_response_id": response_id}
    )
