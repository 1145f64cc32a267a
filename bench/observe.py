"""Benchmark: the cost of observability, as the core throughput figure with it on and off.

Run it from the repository root::

    .venv/bin/python bench/observe.py            # 20,000 deltas, 7 runs per side (~1 minute)
    .venv/bin/python bench/observe.py --quick    # 3,000 deltas, 3 runs per side

Two outlast servers (SQLite, the synthetic agent, the same flags as ``bench/run.py``) are started
side by side:

- off: ``--no-metrics``, no ``OTEL_*`` variables (no tracing);
- on: metrics served (and scraped every second during the measurement, as Prometheus would) and
  tracing on with the OTLP/HTTP exporter (``OTEL_TRACES_EXPORTER=otlp``), exporting every span to a
  loopback OTLP sink in this process that accepts and discards what it is sent.

The figure is bench/run.py's throughput: one background+stream run of 20,000 deltas of 16 bytes,
delay 0, events per second at the client from the POST to the terminal event (every stream checked
gapless, duplicate-free, complete). Runs alternate between the two servers, so that noise from a
shared machine falls on both alike; the figure is the median of each side. Target: on / off >= 0.9.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import run as core  # noqa: E402
from rawhttp import Connection  # noqa: E402

TARGET = 0.9


class OTLPSink:
    """Accepts OTLP/HTTP exports on loopback and counts them."""

    def __init__(self) -> None:
        self.requests = 0
        self.bytes = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                sink.requests += 1
                sink.bytes += len(body)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((core.HOST, 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def environment(values: dict[str, str | None]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


OTEL_VARS = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SDK_DISABLED",
)


def start(side: str, logs: Path, sink: OTLPSink) -> core.Server:
    server = core.Server("outlast", f"observe-{side}", logs)
    env: dict[str, str | None] = dict.fromkeys(OTEL_VARS)
    if side == "off":
        server.cmd.append("--no-metrics")
    else:
        env["OTEL_TRACES_EXPORTER"] = "otlp"
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://{core.HOST}:{sink.port}"
    with environment(env):
        return server.start()


async def scrape_forever(port: int) -> None:
    conn = await Connection(core.HOST, port).connect()
    try:
        while True:
            conn.send("GET", "/metrics", b"")
            _, headers = await conn.read_head()
            await conn.read_body(headers)
            await asyncio.sleep(1.0)
    finally:
        conn.close()


async def measure(server: core.Server, body: bytes, deltas: int) -> tuple[float, float]:
    """Events per second at the client, and the server's CPU microseconds per event."""
    cpu0 = core.read_cpu_s(server.pid) or 0.0
    check, t0, t1 = await core.wait_for(core.stream_run(server.port, body), 120, "run")
    cpu1 = core.read_cpu_s(server.pid) or 0.0
    problems = check.problems(deltas)
    if problems:
        raise core.FigureError("; ".join(problems))
    return float(check.n / (t1 - t0)), (cpu1 - cpu0) / check.n * 1e6


async def main_async(args: argparse.Namespace) -> int:
    deltas = 3000 if args.quick else 20_000
    repeat = 3 if args.quick else args.repeat
    logs = Path(tempfile.mkdtemp(prefix="outlast-bench-observe-"))
    sink = OTLPSink()
    servers = {side: start(side, logs, sink) for side in ("off", "on")}
    scraper = asyncio.create_task(scrape_forever(servers["on"].port))
    body = core.create_body(deltas, 16, 0)
    results: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, list[float]] = {"off": [], "on": []}
    try:
        for server in servers.values():
            await core.warm_up(server)
        for i in range(repeat):
            order = ("off", "on") if i % 2 == 0 else ("on", "off")
            for side in order:
                rate, us = await measure(servers[side], body, deltas)
                results[side].append(rate)
                cpu[side].append(us)
                await asyncio.sleep(0.3)
    finally:
        scraper.cancel()
        with contextlib.suppress(BaseException):
            await scraper
        for server in servers.values():
            server.stop()
        sink.close()
    off, on = statistics.median(results["off"]), statistics.median(results["on"])
    ratio = on / off
    report: dict[str, Any] = {
        "deltas": deltas,
        "runs_per_side": repeat,
        "off_events_per_s": round(off),
        "on_events_per_s": round(on),
        "ratio": round(ratio, 3),
        "off_server_cpu_us_per_event": round(statistics.median(cpu["off"]), 2),
        "on_server_cpu_us_per_event": round(statistics.median(cpu["on"]), 2),
        "otlp_exports_received": sink.requests,
        "otlp_bytes_received": sink.bytes,
    }
    for key, value in report.items():
        print(f"{key:>24}: {value}")
    print(f"{'runs (off)':>24}: {[round(x) for x in results['off']]}")
    print(f"{'runs (on)':>24}: {[round(x) for x in results['on']]}")
    verdict = "PASS" if ratio >= TARGET else "FAIL"
    print(f"throughput with tracing+metrics / without: {ratio:.3f} (target >= {TARGET}) {verdict}")
    return 0 if ratio >= TARGET else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3,000 deltas, 3 runs per side")
    parser.add_argument("--repeat", type=int, default=7, help="runs per side (default 7)")
    args = parser.parse_args()
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
