"""Benchmark: A2A against the Responses API of the same server, in the same run, and the baseline.

Run it from the repository root::

    .venv/bin/python bench/a2a.py                   # full sizes (~1 minute)
    .venv/bin/python bench/a2a.py --quick           # smaller sizes, a smoke test
    .venv/bin/python bench/a2a.py --wait-quiet 60   # on a shared machine: wait for idle CPU first

One ``outlast serve`` (bench/run.py's command: SQLite, the synthetic agent) serves every outlast
figure, so that A2A and the Responses API are measured against the same process, run after run
alternately (noise from a shared machine falls on both alike); the bare baseline
(``bench/baseline.py``) is started after it for the Responses figures it has. The client is
``bench/rawhttp.py`` on uvloop (raw HTTP/1.1, orjson on the ``data:`` lines): not the SDK's
client, which would be the bottleneck.

The figures (medians; PASS/FAIL against the targets of issue 16, part 3):

1. stream: one run of 20,000 deltas of 16 bytes, events per second at the client from sending the
   request to its terminal event, over ``POST /v1/responses`` (stream), over A2A JSON-RPC
   ``SendStreamingMessage`` and over HTTP+JSON ``POST /v1/a2a/message:stream``. Target: each A2A
   binding >= 50% of the Responses API's events/s.
2. resubscribe: the same finished run replayed from its start, over
   ``GET /v1/responses/{id}?stream=true&starting_after=0`` and over A2A ``SubscribeToTask`` with
   ``Last-Event-ID: 0`` (JSON-RPC, and HTTP+JSON ``GET /v1/a2a/tasks/{id}:subscribe``). Target:
   >= 50% of the Responses API's.
3. polling: a finished task of 10 deltas, 20 keep-alive clients for 5 s each way (in five 1 s
   slices taken in turn): ``GET /v1/responses/{id}`` against A2A ``GetTask`` (JSON-RPC
   ``POST /v1/a2a``, and HTTP+JSON ``GET /v1/a2a/tasks/{id}``). Target: >= 50% of the Responses
   API's requests/s. All with the same asyncio client (wrk cannot send the JSON-RPC POST without
   a script), so the client costs every side the same.
4. fan-out: one live run of 5,000 deltas (0.5 ms apart) read by 10 streams at once, its
   creator's and 9 subscribed from its first event (Responses: ``starting_after=0``; A2A:
   ``SubscribeToTask`` with ``Last-Event-ID: 0``): events per second delivered in all and the
   server's CPU per event delivered (each stored event is converted to A2A once for all). No
   target.

Every A2A stream is checked: the sequence numbers (``metadata.sequence_number``, also the SSE
``id``) strictly increase, one artifact chunk per delta, a final ``TASK_STATE_COMPLETED``; every
Responses stream as bench/run.py checks it. A2A counts the A2A events it receives (about as many
as the deltas; the Responses API sends 9 more, which A2A has no counterpart for).

Ratios are A2A / Responses (same server) and outlast / baseline. Results go to
``bench/results/a2a.json`` (gitignored), the servers' logs to ``bench/results/logs/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import run as core  # noqa: E402
from rawhttp import Connection  # noqa: E402

HOST = core.HOST
A2A_HEADERS = {"A2A-Version": "1.0"}
FINAL_STATES = ("TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_CANCELED")
loads = orjson.loads


@dataclass
class Sizes:
    deltas: int = 20_000
    size: int = 16
    repeat: int = 5
    polling_clients: int = 20
    polling_seconds: float = 5.0
    fanout_deltas: int = 5000
    fanout_delay: float = 0.0005
    subscribers: int = 10

    @classmethod
    def quick(cls) -> Sizes:
        return cls(deltas=3000, repeat=1, polling_seconds=2.0, fanout_deltas=1000)


class A2AConnection(Connection):
    """A keep-alive connection that sends A2A's version header (and any other) with a request."""

    def send_with(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> None:
        assert self.writer is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))

    async def request_with(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, dict[bytes, bytes], bytes]:
        self.send_with(method, path, body, headers)
        status, head = await self.read_head()
        return status, head, await self.read_body(head)


class A2ACheck:
    """Checks one A2A stream as it arrives: increasing sequence numbers, a chunk per delta."""

    __slots__ = ("chunks", "disorder", "last", "n", "state", "task_id")

    def __init__(self) -> None:
        self.n = 0
        self.chunks = 0
        self.last = -1
        self.disorder = 0
        self.state = ""
        self.task_id = ""

    def add(self, payload: dict[str, Any]) -> bool:
        """Record one A2A stream event (a StreamResponse, or a JSON-RPC response holding one);
        True when it is the final status update."""
        result = payload.get("result", payload)
        if "error" in payload:
            raise core.FigureError(f"A2A stream error: {str(payload['error'])[:300]}")
        self.n += 1
        (kind, event), *_ = result.items()
        seq = event["metadata"]["sequence_number"]
        if not isinstance(seq, int) or seq <= self.last:
            self.disorder += 1
        self.last = seq
        if kind == "artifactUpdate":
            if not event.get("lastChunk"):
                self.chunks += 1
            return False
        if kind == "task":
            self.task_id = event["id"]
            return False
        if kind == "statusUpdate":
            self.state = event["status"]["state"]
            return self.state in FINAL_STATES
        return False

    def problems(self, deltas: int) -> list[str]:
        found = []
        if self.disorder:
            found.append(f"{self.disorder} events out of order or without an integer number")
        if self.chunks != deltas:
            found.append(f"{self.chunks} artifact chunks, expected {deltas}")
        if self.state != "TASK_STATE_COMPLETED":
            found.append(f"final state {self.state or 'none'!r}, expected TASK_STATE_COMPLETED")
        return found


def prompt(deltas: int, size: int) -> str:
    return f"deltas={deltas} size={size} delay=0"


def jsonrpc(method: str, params: dict[str, Any]) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})


def message(text: str) -> dict[str, Any]:
    return {"messageId": os.urandom(8).hex(), "role": "ROLE_USER", "parts": [{"text": text}]}


async def a2a_stream(
    port: int, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> tuple[A2ACheck, float]:
    """Send one A2A streaming request and read its events to the final one: (check, seconds)."""
    conn = await A2AConnection(HOST, port).connect()
    check = A2ACheck()
    t0 = time.perf_counter()
    await a2a_read(conn, method, path, body, headers, check)
    return check, time.perf_counter() - t0


def checked(check: A2ACheck, deltas: int, what: str) -> None:
    problems = check.problems(deltas)
    if problems:
        raise core.FigureError(f"{what}: " + "; ".join(problems))


async def responses_stream(port: int, sizes: Sizes) -> tuple[float, str]:
    body = core.create_body(sizes.deltas, sizes.size, 0)
    check, t0, t1 = await core.wait_for(core.stream_run(port, body), 120, "Responses stream")
    problems = check.problems(sizes.deltas)
    if problems:
        raise core.FigureError("Responses stream: " + "; ".join(problems))
    return check.n / (t1 - t0), check.response_id


async def responses_replay(port: int, response_id: str, deltas: int) -> float:
    conn = await Connection(HOST, port).connect()
    check = core.StreamCheck(first=1)
    try:
        t0 = time.perf_counter()
        conn.send("GET", f"/v1/responses/{response_id}?stream=true&starting_after=0")
        status, head = await conn.read_head()
        if status != 200:
            raise core.FigureError(f"Responses replay answered {status}")
        async for batch in conn.data_batches(head):
            for data in batch:
                if check.add(loads(data)):
                    elapsed = time.perf_counter() - t0
                    problems = check.problems(deltas)
                    if problems:
                        raise core.FigureError("Responses replay: " + "; ".join(problems))
                    return check.n / elapsed
        raise core.FigureError("Responses replay ended without a terminal event")
    finally:
        conn.close()


def send_body(binding: str, sizes: Sizes) -> tuple[str, bytes]:
    text = prompt(sizes.deltas, sizes.size)
    if binding == "jsonrpc":
        return "/v1/a2a", jsonrpc("SendStreamingMessage", {"message": message(text)})
    return "/v1/a2a/message:stream", orjson.dumps({"message": message(text)})


async def fig_stream(port: int, sizes: Sizes) -> dict[str, Any]:
    rates: dict[str, list[float]] = {"responses": [], "jsonrpc": [], "rest": []}
    cpu: dict[str, list[float]] = {key: [] for key in rates}
    task_id = ""
    for _ in range(sizes.repeat):
        for key in rates:  # alternately, so that noise falls on every side alike
            before = core.read_cpu_s(PID[0]) or 0.0
            if key == "responses":
                rate, _ = await responses_stream(port, sizes)
                events = sizes.deltas + core.FIXED_EVENTS
            else:
                path, body = send_body(key, sizes)
                check, seconds = await core.wait_for(
                    a2a_stream(port, "POST", path, body, {}), 120, f"A2A {key} stream"
                )
                checked(check, sizes.deltas, f"A2A {key} stream")
                task_id = check.task_id
                rate, events = check.n / seconds, check.n
            spent = (core.read_cpu_s(PID[0]) or 0.0) - before
            rates[key].append(rate)
            cpu[key].append(spent / events * 1e6)
            await asyncio.sleep(0.2)
    result: dict[str, Any] = {"task_id": task_id}
    for key, values in rates.items():
        result[f"{key}_events_per_s"] = statistics.median(values)
        result[f"{key}_runs"] = values
        result[f"{key}_server_cpu_us_per_event"] = statistics.median(cpu[key])
    return result


async def fig_fanout(port: int, sizes: Sizes) -> dict[str, Any]:
    """One live run read by ``sizes.subscribers`` streams at once: its creator's, and the others
    subscribed from its first event on (Responses: ``starting_after=0``; A2A: ``SubscribeToTask``
    with ``Last-Event-ID: 0``). Server CPU per event delivered, and every stream checked."""
    deltas, others = sizes.fanout_deltas, sizes.subscribers - 1
    result: dict[str, Any] = {"deltas": deltas, "subscribers": sizes.subscribers}
    for key in ("responses", "jsonrpc"):
        before, t0 = core.read_cpu_s(PID[0]) or 0.0, time.perf_counter()
        if key == "responses":
            body = core.create_body(deltas, sizes.size, sizes.fanout_delay)
            first = core.StreamCheck()
            creator = asyncio.create_task(
                responses_read(port, "POST", "/v1/responses", body, first)
            )
            while not first.response_id and not creator.done():
                await asyncio.sleep(0.001)
            path = f"/v1/responses/{first.response_id}?stream=true&starting_after=0"
            follows = [core.StreamCheck(first=1) for _ in range(others)]
            await asyncio.gather(*(responses_read(port, "GET", path, None, c) for c in follows))
            await creator
            for check in [first, *follows]:
                problems = check.problems(deltas)
                if problems:
                    raise core.FigureError("Responses fan-out: " + "; ".join(problems))
            delivered = sum(check.n for check in [first, *follows])
        else:
            text = f"deltas={deltas} size={sizes.size} delay={sizes.fanout_delay}"
            body = jsonrpc("SendStreamingMessage", {"message": message(text)})
            conn = await A2AConnection(HOST, port).connect()
            creator_check = A2ACheck()
            creator = asyncio.create_task(
                a2a_read(conn, "POST", "/v1/a2a", body, {}, creator_check)
            )
            while not creator_check.task_id and not creator.done():
                await asyncio.sleep(0.001)
            call = jsonrpc("SubscribeToTask", {"id": creator_check.task_id})
            followers = [
                a2a_stream(port, "POST", "/v1/a2a", call, {"Last-Event-ID": "0"})
                for _ in range(others)
            ]
            checks = [c for c, _ in await asyncio.gather(*followers)]
            await creator
            for check in [creator_check, *checks]:
                checked(check, deltas, "A2A fan-out")
            delivered = sum(check.n for check in [creator_check, *checks])
        seconds = time.perf_counter() - t0
        spent = (core.read_cpu_s(PID[0]) or 0.0) - before
        result[f"{key}_events_per_s"] = delivered / seconds
        result[f"{key}_server_cpu_us_per_event"] = spent / delivered * 1e6
        await asyncio.sleep(0.2)
    return result


async def responses_read(
    port: int, method: str, path: str, body: bytes | None, check: core.StreamCheck
) -> None:
    """Read one Responses stream to its terminal event into ``check`` (which callers may watch)."""
    conn = await Connection(HOST, port).connect()
    try:
        conn.send(method, path, body)
        status, head = await conn.read_head()
        if status != 200:
            raise core.FigureError(f"{method} {path} answered {status}")
        async for batch in conn.data_batches(head):
            for data in batch:
                if check.add(loads(data)):
                    return
        raise core.FigureError("a Responses stream ended without a terminal event")
    finally:
        conn.close()


async def a2a_read(
    conn: A2AConnection,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    check: A2ACheck,
) -> None:
    """Read one A2A stream to its final event into ``check`` (which callers may watch)."""
    try:
        conn.send_with(method, path, body, {**A2A_HEADERS, **headers})
        status, head = await conn.read_head()
        if status != 200:
            raw = await conn.read_body(head)
            raise core.FigureError(f"{method} {path} answered {status}: {raw[:300]!r}")
        async for batch in conn.data_batches(head):
            for data in batch:
                if check.add(loads(data)):
                    return
        raise core.FigureError(f"A2A stream ended after {check.n} events without a final state")
    finally:
        conn.close()


async def fig_resubscribe(port: int, sizes: Sizes, task_id: str) -> dict[str, Any]:
    rates: dict[str, list[float]] = {"responses": [], "jsonrpc": [], "rest": []}
    resume = {"Last-Event-ID": "0"}
    for _ in range(sizes.repeat):
        rates["responses"].append(await responses_replay(port, task_id, sizes.deltas))
        body = jsonrpc("SubscribeToTask", {"id": task_id})
        check, seconds = await core.wait_for(
            a2a_stream(port, "POST", "/v1/a2a", body, resume), 120, "A2A JSON-RPC resubscribe"
        )
        checked(check, sizes.deltas, "A2A JSON-RPC resubscribe")
        rates["jsonrpc"].append(check.n / seconds)
        path = f"/v1/a2a/tasks/{task_id}:subscribe"
        check, seconds = await core.wait_for(
            a2a_stream(port, "GET", path, None, resume), 120, "A2A HTTP+JSON resubscribe"
        )
        checked(check, sizes.deltas, "A2A HTTP+JSON resubscribe")
        rates["rest"].append(check.n / seconds)
    result: dict[str, Any] = {}
    for key, values in rates.items():
        result[f"{key}_events_per_s"] = statistics.median(values)
        result[f"{key}_runs"] = values
    return result


async def poll(
    port: int, method: str, path: str, body: bytes | None, clients: int, seconds: float
) -> float:
    """Requests per second of ``clients`` keep-alive connections for ``seconds``; each answer
    must be a 200 holding a finished task or response."""
    counts = [0] * clients
    stop_at = time.perf_counter() + seconds

    async def client(i: int) -> None:
        conn = await A2AConnection(HOST, port).connect()
        try:
            while time.perf_counter() < stop_at:
                status, _, raw = await conn.request_with(method, path, body, A2A_HEADERS)
                if status != 200 or b"completed" not in raw.lower() or b'"error": {' in raw:
                    raise core.FigureError(f"{method} {path} answered {status}: {raw[:300]!r}")
                counts[i] += 1
        finally:
            conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return sum(counts) / (time.perf_counter() - t0)


async def small_task(port: int) -> str:
    """A finished task of 10 deltas (as bench/run.py polls), sent with a blocking SendMessage."""
    conn = await A2AConnection(HOST, port).connect()
    try:
        body = jsonrpc("SendMessage", {"message": message(prompt(10, 16))})
        status, _, raw = await conn.request_with("POST", "/v1/a2a", body, A2A_HEADERS)
        task = loads(raw).get("result", {}).get("task", {})
        if status != 200 or task.get("status", {}).get("state") != "TASK_STATE_COMPLETED":
            raise core.FigureError(f"SendMessage answered {status}: {raw[:300]!r}")
        return str(task["id"])
    finally:
        conn.close()


async def fig_polling(port: int, sizes: Sizes) -> dict[str, Any]:
    """Each way polled for ``polling_seconds`` in all, in five slices taken in turn, so that a
    busy spell of the machine falls on every side alike."""
    n, share = sizes.polling_clients, sizes.polling_seconds / POLL_SLICES
    task_id = await small_task(port)
    calls = {
        "responses": ("GET", f"/v1/responses/{task_id}", None),
        "jsonrpc": ("POST", "/v1/a2a", jsonrpc("GetTask", {"id": task_id})),
        "rest": ("GET", f"/v1/a2a/tasks/{task_id}", None),
    }
    slices: dict[str, list[float]] = {key: [] for key in calls}
    for _ in range(POLL_SLICES):
        for key, (method, path, body) in calls.items():
            slices[key].append(await poll(port, method, path, body, n, share))
    result: dict[str, Any] = {f"{key}_requests_per_s": statistics.mean(rates)
                              for key, rates in slices.items()}  # fmt: skip
    result["slices"] = slices
    result["tool"] = "asyncio raw-HTTP client (the same for every side)"
    return result


POLL_SLICES = 5
PID = [0]


async def measure_outlast(sizes: Sizes, logs_dir: Path) -> dict[str, Any]:
    srv = core.Server("outlast", "a2a", logs_dir)
    try:
        await asyncio.to_thread(srv.start)
        PID[0] = srv.pid
        await core.wait_for(core.warm_up(srv), 60, "warm-up")
        small = Sizes(deltas=20, repeat=1)
        for key in ("jsonrpc", "rest"):  # builds A2A (on its first request) and warms it up
            path, body = send_body(key, small)
            await core.wait_for(a2a_stream(srv.port, "POST", path, body, {}), 60, "A2A warm-up")
        stream = await fig_stream(srv.port, sizes)
        resubscribe = await fig_resubscribe(srv.port, sizes, stream["task_id"])
        polling = await fig_polling(srv.port, sizes)
        fanout = await fig_fanout(srv.port, sizes)
        if not srv.alive():
            raise core.FigureError("the outlast server died")
        return {"stream": stream, "resubscribe": resubscribe, "polling": polling, "fanout": fanout,
                "server_command": shlex.join(srv.cmd)}  # fmt: skip
    finally:
        await asyncio.to_thread(srv.stop)


async def measure_baseline(sizes: Sizes, logs_dir: Path) -> dict[str, Any]:
    srv = core.Server("baseline", "a2a", logs_dir)
    try:
        await asyncio.to_thread(srv.start)
        await core.wait_for(core.warm_up(srv), 60, "warm-up")
        rates = [(await responses_stream(srv.port, sizes))[0] for _ in range(sizes.repeat)]
        response_id, _ = await core.finished_response(srv)
        path = f"/v1/responses/{response_id}"
        polls = await poll(srv.port, "GET", path, None, sizes.polling_clients,
                           sizes.polling_seconds)  # fmt: skip
        return {"events_per_s": statistics.median(rates), "runs": rates,
                "requests_per_s": polls, "server_command": shlex.join(srv.cmd)}  # fmt: skip
    finally:
        await asyncio.to_thread(srv.stop)


def rows(results: dict[str, Any], sizes: Sizes) -> list[list[str]]:
    out = results["outlast"]
    base = results.get("baseline", {})
    table: list[list[str]] = []

    def add(label: str, value: float, ref: float | None, ref_name: str, target: bool) -> None:
        ratio = value / ref if ref else None
        verdict = "" if not target or ratio is None else ("PASS" if ratio >= 0.5 else "FAIL")
        table.append([label, f"{value:,.0f}", f"{ratio:.2f}x {ref_name}" if ratio else "-",
                      ">= 0.50x Responses" if target else "", verdict])  # fmt: skip

    n = f"{sizes.deltas:,}"
    for fig, unit, base_key in (("stream", "events_per_s", "events_per_s"),
                                ("resubscribe", "events_per_s", None),
                                ("polling", "requests_per_s", "requests_per_s")):  # fmt: skip
        what = {"stream": f"stream of {n} deltas [events/s]",
                "resubscribe": f"replay of {n} deltas [events/s]",
                "polling": f"polling, {sizes.polling_clients} clients [req/s]"}[fig]  # fmt: skip
        figure = out[fig]
        responses = figure[f"responses_{unit}"]
        if base_key and base.get(base_key):
            table.append([f"{what}: baseline, Responses", f"{base[base_key]:,.0f}", "", "", ""])
        add(f"{what}: outlast, Responses", responses, base.get(base_key) if base_key else None,
            "baseline", False)  # fmt: skip
        for key, name in (("jsonrpc", "A2A JSON-RPC"), ("rest", "A2A HTTP+JSON")):
            add(f"{what}: outlast, {name}", figure[f"{key}_{unit}"], responses, "Responses", True)
    fanout = out.get("fanout")
    if fanout:
        what = f"fan-out, 1 run to {fanout['subscribers']} streams [events/s delivered]"
        responses = fanout["responses_events_per_s"]
        add(f"{what}: outlast, Responses", responses, None, "", False)
        add(f"{what}: outlast, A2A JSON-RPC", fanout["jsonrpc_events_per_s"], responses,
            "Responses", False)  # fmt: skip
    return table


def print_rows(table: list[list[str]]) -> None:
    header = ["figure", "value", "ratio", "target", "result"]
    widths = [max(len(line[i]) for line in [header, *table]) for i in range(len(header))]
    for line in [header, *table]:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))


async def main_async(args: argparse.Namespace) -> int:
    sizes = Sizes.quick() if args.quick else Sizes()
    logs_dir = BENCH_DIR / "results" / "logs"
    logs_dir.mkdir(parents=True, exist_ok=True)
    command = shlex.join([os.path.relpath(sys.executable, ROOT), "bench/a2a.py", *sys.argv[1:]])
    print(f"command: {command}", flush=True)
    core.raise_nofile()
    results: dict[str, Any] = {}
    for kind, measure in (("outlast", measure_outlast), ("baseline", measure_baseline)):
        if kind == "baseline" and args.no_baseline:
            continue
        busy = await core.wait_quiet(args.wait_quiet) if args.wait_quiet else None
        busy0, own0, t0 = core.system_busy_s(), core.own_cpu_s(), time.perf_counter()
        print(f"  {kind} ...", flush=True)
        func: Callable[[Sizes, Path], Awaitable[dict[str, Any]]] = measure
        results[kind] = await func(sizes, logs_dir)
        elapsed = time.perf_counter() - t0
        other = max(0.0, (core.system_busy_s() - busy0) - (core.own_cpu_s() - own0))
        results[kind]["other_cpu_cores"] = round(other / elapsed, 2)
        results[kind]["busy_cores_before"] = busy
        print(f"  {kind}: {elapsed:.1f} s, other processes used "
              f"{other / elapsed:.2f} cores", flush=True)  # fmt: skip
    table = rows(results, sizes)
    print()
    print_rows(table)
    stream = results["outlast"]["stream"]
    fanout = results["outlast"]["fanout"]
    print(f"server CPU per event delivered (fan-out): responses "
          f"{fanout['responses_server_cpu_us_per_event']:.1f} us, jsonrpc "
          f"{fanout['jsonrpc_server_cpu_us_per_event']:.1f} us")  # fmt: skip
    print("\nserver CPU per event (stream): " + ", ".join(
        f"{key} {stream[f'{key}_server_cpu_us_per_event']:.1f} us"
        for key in ("responses", "jsonrpc", "rest")))  # fmt: skip
    report = {
        "command": command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git": core.git_state(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
        "sizes": asdict(sizes),
        "results": results,
        "table": table,
    }
    out = Path(args.json) if args.json else BENCH_DIR / "results" / "a2a.json"
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nresults: {os.path.relpath(out, ROOT)}")
    return 1 if any(line[-1] == "FAIL" for line in table) else 0


def main() -> None:
    parser = argparse.ArgumentParser(description="A2A against the Responses API (see docstring).")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke test")
    parser.add_argument("--no-baseline", action="store_true", help="skip the bare baseline")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="before each server, wait up to SECONDS for the machine to be idle")  # fmt: skip
    parser.add_argument(
        "--json", help="where to write the results (default bench/results/a2a.json)"
    )
    args = parser.parse_args()
    core.run_main(main_async(args))


if __name__ == "__main__":
    main()
