"""Benchmark: WebSocket mode against HTTP SSE, on the same outlast server, beside a bare baseline.

Run it from the repository root::

    .venv/bin/python bench/websocket.py            # full sizes (~1 minute)
    .venv/bin/python bench/websocket.py --quick    # smaller sizes, a smoke test

Each server is started fresh as in ``bench/run.py`` (the same commands, the synthetic agent,
``deltas=N size=B delay=S``), warmed up, measured and stopped: the baseline (SSE only: it has no
WebSocket mode), then outlast. The WebSocket client is ``websockets``' asyncio client without
compression (as the ``openai`` SDK connects), decoding each frame with orjson, as the SSE client
(``bench/rawhttp.py``) decodes each ``data:`` line; every stream is checked the same way
(sequence numbers 0..N-1, no gap or duplicate, N deltas, a terminal ``response.completed``).

The figures:

1. **throughput**: one run of 20,000 deltas of 16 bytes, delay 0; events per second at the
   client from sending the create to the terminal event (median of 5), and the server's CPU
   per event. Over the socket, a ``response.create`` on an open connection; over HTTP, the same
   foreground response as ``POST stream:true`` (``sse``), the two in turns; and run.py's
   background+stream POST (``sse_background``), for the baseline too. Target: WebSocket >= SSE.
2. **ttfd** (time to first delta): on one socket, 200 responses one after another (deltas=1);
   from sending each ``response.create`` to its first delta, for every response but the first
   (each is "a second response on the same socket"). p50 and p95, beside run.py's HTTP figure
   (200 background+stream POSTs on one keep-alive connection). Target: WebSocket p50 within 5 ms
   of the HTTP p50.

Results are printed and written to ``bench/results/websocket.json`` (gitignored).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import orjson

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))


from run import (  # noqa: E402
    HOST,
    FigureError,
    Server,
    Sizes,
    StreamCheck,
    fig_throughput,
    fig_ttfd,
    pct,
    read_cpu_s,
    run_main,
    stream_run,
    warm_up,
)


def ws_create(deltas: int, size: int = 16, delay: float = 0.0) -> str:
    return json.dumps(
        {
            "type": "response.create",
            "model": "synthetic",
            "input": f"deltas={deltas} size={size} delay={delay}",
        }
    )


def sse_body(deltas: int, size: int = 16) -> bytes:
    """The same foreground response over HTTP: ``stream: true``, no ``background``."""
    return orjson.dumps(
        {"model": "synthetic", "input": f"deltas={deltas} size={size} delay=0", "stream": True}
    )


class RawSocket:
    """A lean WebSocket client (RFC 6455), as ``bench/rawhttp.py`` is a lean HTTP one: it reads
    whole frames out of a buffer and hands their payloads to orjson, because it shares the two
    cores with the server and must not be the bottleneck (``websockets``' client, which the SDK
    uses, parses each frame in a Python generator: three times the client CPU per event)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buf = b""

    @classmethod
    async def open(cls, port: int) -> RawSocket:
        reader, writer = await asyncio.open_connection(HOST, port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /v1/responses HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise FigureError(f"the upgrade was answered {head[:60]!r}")
        return cls(reader, writer)

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = bytes((0x80 | opcode, 0x80 | n))
        elif n < 65536:
            head = bytes((0x80 | opcode, 0xFE)) + n.to_bytes(2, "big")
        else:
            head = bytes((0x80 | opcode, 0xFF)) + n.to_bytes(8, "big")
        # Client frames are masked (RFC 6455 5.3): the payload XOR the key, repeated.
        repeated = (mask * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
            n, "big"
        )
        self.writer.write(head + mask + masked)

    async def send(self, text: str) -> None:
        self._send(0x1, text.encode())
        await self.writer.drain()

    async def messages(self) -> list[bytes]:
        """The text messages of the next read (at least one)."""
        out: list[bytes] = []
        while not out:
            data = await self.reader.read(1 << 20)
            if not data:
                raise FigureError("the server closed the connection")
            buf = self.buf + data if self.buf else data
            pos, end = 0, len(buf)
            while end - pos >= 2:
                opcode, n = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
                start = pos + 2
                if n == 126:
                    if end - pos < 4:
                        break
                    n, start = int.from_bytes(buf[pos + 2 : pos + 4], "big"), pos + 4
                elif n == 127:
                    if end - pos < 10:
                        break
                    n, start = int.from_bytes(buf[pos + 2 : pos + 10], "big"), pos + 10
                if end - start < n:
                    break
                payload = buf[start : start + n]
                pos = start + n
                if opcode == 0x1:
                    out.append(payload)
                elif opcode == 0x9:  # a ping: answer it
                    self._send(0xA, payload)
                elif opcode == 0x8:
                    raise FigureError(f"the server closed the connection: {payload!r}")
            self.buf = buf[pos:]
        return out

    async def close(self) -> None:
        self._send(0x8, (1000).to_bytes(2, "big"))
        self.writer.close()


async def ws_run(ws: RawSocket, message: str) -> tuple[StreamCheck, float, float, float]:
    """One response on an open socket: the check, when the create was sent, when its first
    delta and its terminal event arrived."""
    check = StreamCheck()
    first = 0.0
    t0 = time.perf_counter()
    await ws.send(message)
    while True:
        batch = await ws.messages()
        now = time.perf_counter()
        for raw in batch:
            event = orjson.loads(raw)
            if event.get("type") == "error":
                raise FigureError(f"error event: {event}")
            if not first and event.get("type") == "response.output_text.delta":
                first = now
            if check.add(event):
                return check, t0, first, now


async def fig_throughputs(srv: Server, sizes: Sizes) -> dict[str, Any]:
    """The same 20,000-delta response over the socket and over SSE, in turns (the order swapped
    each round, so that a busy spell of a shared machine falls on both sides alike)."""
    deltas, size = sizes.throughput_deltas, sizes.throughput_size
    runs: dict[str, list[dict[str, Any]]] = {"websocket": [], "sse": []}
    ws = await RawSocket.open(srv.port)

    async def over_ws() -> tuple[StreamCheck, float, float]:
        check, t0, _, t1 = await ws_run(ws, ws_create(deltas, size))
        return check, t0, t1

    async def over_sse() -> tuple[StreamCheck, float, float]:
        return await stream_run(srv.port, sse_body(deltas, size))

    try:
        await ws_run(ws, ws_create(20))
        for round_ in range(sizes.throughput_repeat):
            order = [("websocket", over_ws), ("sse", over_sse)]
            for name, run in order if round_ % 2 == 0 else order[::-1]:
                cpu0 = read_cpu_s(srv.pid) or 0.0
                check, t0, t1 = await asyncio.wait_for(run(), 120)
                cpu = (read_cpu_s(srv.pid) or 0.0) - cpu0
                problems = check.problems(deltas)
                if problems:
                    raise FigureError(f"{name} throughput run: " + "; ".join(problems))
                runs[name].append(
                    {"events": check.n, "seconds": t1 - t0, "events_per_s": check.n / (t1 - t0),
                     "server_cpu_us_per_event": cpu / check.n * 1e6}
                )  # fmt: skip
                await asyncio.sleep(0.3)
    finally:
        await ws.close()
    return {
        name: {
            "events_per_s": statistics.median(r["events_per_s"] for r in rs),
            "server_cpu_us_per_event": statistics.median(r["server_cpu_us_per_event"] for r in rs),
            "runs": rs,
        }
        for name, rs in runs.items()
    }


async def fig_ws_ttfd(port: int, sizes: Sizes) -> dict[str, Any]:
    samples: list[float] = []
    ws = await RawSocket.open(port)
    try:
        for i in range(sizes.ttfd_requests + 1):
            check, t0, first, _ = await asyncio.wait_for(ws_run(ws, ws_create(1)), 30)
            problems = check.problems(1)
            if problems or not first:
                raise FigureError("websocket ttfd run: " + "; ".join(problems or ["no delta"]))
            if i:  # the first response on the socket is not a second one
                samples.append((first - t0) * 1000)
    finally:
        await ws.close()
    return {"requests": len(samples), "p50_ms": pct(samples, 0.5), "p95_ms": pct(samples, 0.95),
            "min_ms": min(samples)}  # fmt: skip


async def measure(kind: str, sizes: Sizes, logs: Path) -> dict[str, Any]:
    srv = Server(kind, "websocket", logs).start()
    try:
        await warm_up(srv)
        figures: dict[str, Any] = {"sse_background": await fig_throughput(srv, sizes)}
        figures["http_ttfd"] = await fig_ttfd(srv, sizes)
        if kind == "outlast":
            figures.update(await fig_throughputs(srv, sizes))
            figures["websocket_ttfd"] = await fig_ws_ttfd(srv.port, sizes)
        return figures
    finally:
        srv.stop()


async def main_async(args: argparse.Namespace) -> int:
    sizes = Sizes.quick() if args.quick else Sizes()
    logs = BENCH_DIR / "results" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    results = {kind: await measure(kind, sizes, logs) for kind in ("baseline", "outlast")}
    base, out = results["baseline"], results["outlast"]
    rows = [
        ("throughput, baseline SSE (background)", base["sse_background"]["events_per_s"], "ev/s"),
        ("throughput, outlast SSE (background)", out["sse_background"]["events_per_s"], "ev/s"),
        ("throughput, outlast SSE (foreground)", out["sse"]["events_per_s"], "ev/s"),
        ("throughput, outlast WebSocket", out["websocket"]["events_per_s"], "ev/s"),
        ("server CPU per event, SSE (foreground)", out["sse"]["server_cpu_us_per_event"], "µs"),
        ("server CPU per event, WebSocket", out["websocket"]["server_cpu_us_per_event"], "µs"),
        ("ttfd p50, baseline HTTP", base["http_ttfd"]["p50_ms"], "ms"),
        ("ttfd p50, outlast HTTP", out["http_ttfd"]["p50_ms"], "ms"),
        ("ttfd p50, outlast WebSocket (2nd+ on a socket)", out["websocket_ttfd"]["p50_ms"], "ms"),
        ("ttfd p95, outlast HTTP", out["http_ttfd"]["p95_ms"], "ms"),
        ("ttfd p95, outlast WebSocket", out["websocket_ttfd"]["p95_ms"], "ms"),
    ]
    for name, value, unit in rows:
        print(f"{name:<50} {value:>12,.1f} {unit}")
    ratio = out["websocket"]["events_per_s"] / out["sse"]["events_per_s"]
    gap = out["websocket_ttfd"]["p50_ms"] - out["http_ttfd"]["p50_ms"]
    ok1, ok2 = ratio >= 1.0, gap <= 5.0
    print(f"throughput: WebSocket / SSE = {ratio:.2f}x (target >= 1): {'PASS' if ok1 else 'FAIL'}")
    print(f"ttfd: WebSocket p50 - HTTP p50 = {gap:+.2f} ms (target <= 5): "
          f"{'PASS' if ok2 else 'FAIL'}")  # fmt: skip
    out_path = BENCH_DIR / "results" / "websocket.json"
    out_path.write_text(json.dumps({"command": sys.argv, "results": results}, indent=2))
    return 0 if ok1 and ok2 else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke test)")
    run_main(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
