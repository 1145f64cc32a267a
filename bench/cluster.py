"""Benchmark: outlast on PostgreSQL, one replica and several, against the bare baseline.

Run it from the repository root (PostgreSQL at ``OUTLAST_BENCH_DATABASE_URL``, default
``postgresql://postgres@127.0.0.1:5432/test``; each figure gets a fresh database)::

    .venv/bin/python bench/cluster.py            # every figure (~2 minutes)
    .venv/bin/python bench/cluster.py --quick    # smaller sizes
    .venv/bin/python bench/cluster.py --only tail

Figures (targets from the scale-out issue; PASS/FAIL is printed):

1. pg_throughput: one background+stream run of 20,000 deltas of 16 bytes, delay 0, on one
   replica with PostgreSQL; events per second at the client (median of 3), as a ratio of the
   bare baseline (``bench/baseline.py``, no storage). Target: >= 0.40.
2. tail: replicas A and B on one database. A run executes on A (5,000 deltas, 2 ms apart); client
   X streams it from A (the POST's own stream), client Y tails it from B
   (``GET /v1/responses/{id}?stream=true``) in a process of its own. For every event, the time
   it reached Y minus the time it reached X: X receives an event as soon as A has committed it, so this is the time
   from the commit on A to the arrival at a client of B. p50/p95 over the events after the
   first 100 (when Y is live, not catching up). Target: p50 < 20 ms.
3. scale: 200 background+stream runs at once (1,000 deltas each, delay 0), POSTed round-robin
   to one replica, then to two replicas on one database; total events per second from the first
   POST to the last terminal event. Reported as a ratio two/one (this machine has 2 cores, which
   the replicas share with PostgreSQL and the client).

Every stream is checked: gapless sequence numbers from 0, each once, a terminal completed event.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import orjson

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from rawhttp import Connection  # noqa: E402
from run import (  # noqa: E402
    DEFAULT_PG_ADMIN,
    HOST,
    Database,
    FigureError,
    Server,
    StreamCheck,
    create_body,
    pct,
    raise_nofile,
    stream_run,
    wait_for,
    warm_up,
)


def replica(db_url: str, figure: str, logs: Path, name: str) -> Server:
    srv = Server("outlast", f"{figure}-{name}", logs)
    srv.cmd = [
        sys.executable, "-m", "outlast", "serve",
        "--port", str(srv.port),
        "--db", db_url,
        "--agent", "outlast.agents.synthetic:agent",
        "--max-running", "2000",
        "--max-queued", "10000",
    ]  # fmt: skip
    return srv


async def throughput(srv: Server, deltas: int, repeat: int) -> float:
    body = create_body(deltas, 16, 0)
    rates = []
    for _ in range(repeat):
        check, t0, t1 = await wait_for(stream_run(srv.port, body), 180, "throughput run")
        problems = check.problems(deltas)
        if problems:
            raise FigureError("; ".join(problems))
        rates.append(check.n / (t1 - t0))
        await asyncio.sleep(0.3)
    return statistics.median(rates)


async def fig_pg_throughput(admin: str, logs: Path, quick: bool) -> dict[str, Any]:
    deltas, repeat = (3000, 1) if quick else (20_000, 3)
    base = Server("baseline", "pg_throughput", logs)
    try:
        await asyncio.to_thread(base.start)
        await warm_up(base)
        baseline = await throughput(base, deltas, repeat)
    finally:
        await asyncio.to_thread(base.stop)
    async with Database(admin) as db:
        srv = replica(db.url, "pg_throughput", logs, "a")
        try:
            await asyncio.to_thread(srv.start)
            await warm_up(srv)
            ours = await throughput(srv, deltas, repeat)
        finally:
            await asyncio.to_thread(srv.stop)
    return {"baseline_events_per_s": baseline, "outlast_pg_events_per_s": ours,
            "ratio": ours / baseline, "target": ">= 0.40", "pass": ours / baseline >= 0.40}  # fmt: skip


async def read_stream(
    conn: Connection, arrivals: dict[int, float], check: StreamCheck, headers: dict[bytes, bytes]
) -> None:
    async for batch in conn.data_batches(headers):
        now = time.perf_counter()
        for data in batch:
            event = orjson.loads(data)
            arrivals[event["sequence_number"]] = now
            if check.add(event):
                return


async def tail_reader(port: int, response_id: str, deltas: int) -> None:
    """Client Y, in a process of its own: tail one response, print each event's arrival time.

    Its own process, so that its reads are never queued behind X's in one event loop (which
    would measure the client, not the replicas). ``time.perf_counter`` is CLOCK_MONOTONIC, one
    clock for every process on the machine.
    """
    y = await Connection(HOST, port).connect()
    y.send("GET", f"/v1/responses/{response_id}?stream=true")
    status, headers = await y.read_head()
    if status != 200:
        raise SystemExit(f"GET stream on B answered {status}")
    arrivals: dict[int, float] = {}
    check = StreamCheck()
    await read_stream(y, arrivals, check, headers)
    problems = check.problems(deltas)
    if problems:
        raise SystemExit("stream on B: " + "; ".join(problems))
    sys.stdout.write(orjson.dumps({str(k): v for k, v in arrivals.items()}).decode())


async def fig_tail(admin: str, logs: Path, quick: bool) -> dict[str, Any]:
    deltas = 1000 if quick else 5000
    async with Database(admin) as db:
        a = replica(db.url, "tail", logs, "a")
        b = replica(db.url, "tail", logs, "b")
        try:
            await asyncio.gather(asyncio.to_thread(a.start), asyncio.to_thread(b.start))
            await warm_up(a)
            await warm_up(b)
            x = await Connection(HOST, a.port).connect()
            x.send("POST", "/v1/responses", create_body(deltas, 16, 0.002))
            status, x_headers = await x.read_head()
            if status != 200:
                raise FigureError(f"POST answered {status}")
            at_x: dict[int, float] = {}
            check_x = StreamCheck()
            # The first frames carry the id; Y starts tailing as soon as it is known.
            async for batch in x.data_batches(x_headers):
                now = time.perf_counter()
                for data in batch:
                    event = orjson.loads(data)
                    at_x[event["sequence_number"]] = now
                    check_x.add(event)
                break
            assert check_x.response_id
            y = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--tail-reader",
                f"{b.port} {check_x.response_id} {deltas}",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            _, (y_stdout, y_stderr) = await wait_for(
                asyncio.gather(read_stream(x, at_x, check_x, x_headers), y.communicate()),
                120,
                "tail",
            )
            if y.returncode != 0:
                raise FigureError(y_stderr.decode().strip()[-500:])
            problems = check_x.problems(deltas)
            if problems:
                raise FigureError("stream on A: " + "; ".join(problems))
            at_y = {int(k): v for k, v in orjson.loads(y_stdout).items()}
            lags = [(at_y[s] - at_x[s]) * 1000 for s in sorted(at_x) if s >= 100 and s in at_y]
        finally:
            await asyncio.gather(asyncio.to_thread(a.stop), asyncio.to_thread(b.stop))
    p50 = pct(lags, 0.5)
    return {"events": len(lags), "p50_ms": p50, "p95_ms": pct(lags, 0.95),
            "max_ms": max(lags), "target": "p50 < 20 ms", "pass": p50 < 20}  # fmt: skip


async def many(ports: list[int], runs: int, deltas: int) -> tuple[int, float]:
    body = create_body(deltas, 16, 0)
    events = 0

    async def one(i: int) -> None:
        nonlocal events
        check, _, _ = await stream_run(ports[i % len(ports)], body)
        problems = check.problems(deltas)
        if problems:
            raise FigureError("; ".join(problems))
        events += check.n

    t0 = time.perf_counter()
    await wait_for(asyncio.gather(*(one(i) for i in range(runs))), 600, "scale runs")
    return events, time.perf_counter() - t0


async def fig_scale(admin: str, logs: Path, quick: bool) -> dict[str, Any]:
    runs, deltas = (50, 200) if quick else (200, 1000)
    result: dict[str, Any] = {"runs": runs, "deltas": deltas}
    for count in (1, 2):
        async with Database(admin) as db:
            servers = [replica(db.url, "scale", logs, f"{count}-{i}") for i in range(count)]
            try:
                await asyncio.gather(*(asyncio.to_thread(s.start) for s in servers))
                for s in servers:
                    await warm_up(s)
                events, seconds = await many([s.port for s in servers], runs, deltas)
            finally:
                await asyncio.gather(*(asyncio.to_thread(s.stop) for s in servers))
        result[f"replicas_{count}_events_per_s"] = events / seconds
        result[f"replicas_{count}_seconds"] = seconds
    result["ratio_two_over_one"] = (
        result["replicas_2_events_per_s"] / result["replicas_1_events_per_s"]
    )
    return result


FIGURES = {"pg_throughput": fig_pg_throughput, "tail": fig_tail, "scale": fig_scale}


async def main_async(args: argparse.Namespace) -> int:
    admin = os.environ.get("OUTLAST_BENCH_DATABASE_URL", DEFAULT_PG_ADMIN)
    logs = BENCH_DIR / "results" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    raise_nofile()
    chosen = args.only.split(",") if args.only else list(FIGURES)
    failed = False
    results: dict[str, Any] = {}
    for name in chosen:
        print(f"{name:<14} ...", end=" ", flush=True)
        try:
            result = await FIGURES[name](admin, logs, args.quick)
        except FigureError as exc:
            result = {"error": str(exc), "pass": False}
        results[name] = result
        failed |= result.get("pass") is False
        shown = {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}
        print(shown, flush=True)
    out = BENCH_DIR / "results" / "cluster.json"
    out.write_text(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    print(f"results: {out.relative_to(BENCH_DIR.parent)}")
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help=f"comma-separated: {', '.join(FIGURES)}")
    parser.add_argument("--tail-reader", help=argparse.SUPPRESS)  # "PORT ID DELTAS": client Y
    args = parser.parse_args()
    if args.tail_reader:
        port, response_id, deltas = args.tail_reader.split()
        asyncio.run(tail_reader(int(port), response_id, int(deltas)))
        return
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
