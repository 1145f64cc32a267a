"""Benchmark: what journaling costs, as the throughput of a run of trivial steps.

Run it from the repository root::

    .venv/bin/python bench/durable.py                 # 2,000 steps, median of 7 runs each
    .venv/bin/python bench/durable.py --steps 5000 --runs 5
    .venv/bin/python bench/durable.py --server        # through outlast serve and a client
    .venv/bin/python bench/durable.py --concurrent 6  # 6 runs at once: each one's steps/s

Each run is one background response on a fresh SQLite file (``synchronous=FULL``, the default),
executed by the engine in this process (no HTTP: what is measured is the engine, the writer and
the database), or, with ``--server``, by an ``outlast serve`` process whose events a client
streams to the end (what a user sees: the agents of ``tests/support/durable_agents.py``). The
agent makes N trivial steps, each yielding one text delta:

- **journaled**: ``await request.step(f"s{i}", fn, i)``, each result journaled;
- **direct**: the same agent calling ``await fn(i)`` itself (no journal).

``fn`` is an async function (the usual step: a model or tool call); ``--sync`` makes it a plain
function, which a step runs in a thread (the direct agent calls it inline). Throughput is steps
per second from the create to the run's end (all committed); the ratio is journaled / direct
(target: at least 0.8). ``--work MS`` gives each step function that much waiting (a model or
tool call takes milliseconds to seconds). A step's function starts only once the previous step's
result is committed (durable-runs invariant 1: a crash re-runs at most the step in flight), so a
run of trivial steps goes at the pace of its commits (one commit latency per step); with a
millisecond of work per step the ratio is back near 1.

``--takeover`` measures hand-overs on PostgreSQL (``OUTLAST_TEST_DATABASE_URL``, a fresh database)
with two replicas (``--lease 2``): a journaled run executing on replica A, streamed from replica B,
and A killed with SIGKILL (or stopped with SIGTERM: ``--sigterm``); the figures are from the kill
to the first event the survivor writes (the resume's ``response.queued``) and to the run's next
text delta (targets: the lease plus one second after a kill; one second plus the step in flight
after a SIGTERM).

``--sleepers N`` measures instead what durably sleeping runs cost: N background runs that each
make a step and then ``await request.sleep(..., 3600)``, created in this process on SQLite; the
figures are the growth of the process's RSS from before the first create to when all N sleep (no
task, no slot, no timer: an entry in the executor's table of sleepers; target for 10,000: under
20 MB), which includes SQLite's page caches filling with the new rows, and the Python memory the
sleeping runs keep (``tracemalloc``, after the transients of their last attempts are gone, with
the sites that keep most; ``--trace``, whose own memory would inflate the RSS figure).
``OUTLAST_BENCH_MALLOCSTATS=1`` prints the allocator's arenas at the end (``sys._debugmallocstats``):
RSS that Python's objects do not account for is arenas held by a few live objects each. ``--finished`` runs the same agent without the sleep, for comparison: the RSS that
N runs cost anyway (SQLite's page caches, the allocator's high-water mark).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from outlast import AgentOutput, AgentRequest
from outlast.config import Settings
from outlast.engine import Engine
from outlast.protocol.spec import RunSpec
from outlast.store.sqlite import SQLiteStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))

from serverproc import ServerProcess

# bench --sleepers creates its runs this many at a time.
WAVE = 500
SERVER_AGENTS = {
    "journaled": "durable_agents:trivial_steps",
    "direct": "durable_agents:trivial_calls",
}


def agents(steps: int, sync: bool, work: float = 0.0) -> dict[str, Callable[[AgentRequest], Any]]:
    async def async_fn(i: int) -> int:
        if work:
            await asyncio.sleep(work)
        return i + 1

    def sync_fn(i: int) -> int:
        if work:
            time.sleep(work)
        return i + 1

    async def journaled(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
        fn = sync_fn if sync else async_fn
        for i in range(steps):
            value = await request.step(f"s{i}", fn, i)
            yield f"{value} "

    async def direct(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
        for i in range(steps):
            value = sync_fn(i) if sync else await async_fn(i)
            yield f"{value} "

    return {"journaled": journaled, "direct": direct}


async def one_run(
    agent: Callable[[AgentRequest], Any], steps: int, directory: Path, concurrent: int = 1
) -> float:
    """Steps per second of one run, from its create to its committed end (``concurrent`` runs at
    once: each one's)."""
    store = SQLiteStore(f"sqlite:///{directory / f'bench-{time.monotonic_ns()}.db'}")
    engine = Engine(Settings(retention_interval=3600.0), store, agent)
    await engine.start()
    try:
        started = time.perf_counter()
        spec = RunSpec(model="bench", input_items=[], background=True)
        handles = [await engine.create(spec, "o") for _ in range(concurrent)]
        await asyncio.gather(*(engine.wait(handle) for handle in handles))
        elapsed = time.perf_counter() - started
        for handle in handles:
            status = (await store.get_response(handle.id, None)).status  # type: ignore[union-attr]
            assert status == "completed", status
            if agent.__name__ == "journaled":
                # The journal holds the steps and the run's begun marker (position -1).
                journal = await store.read_steps(handle.id)
                assert len([step for step in journal if step.position >= 0]) == steps
    finally:
        await engine.close()
    return steps / elapsed


def takeover(rounds: int, sigterm: bool) -> None:
    import signal

    from databases import fresh_database

    lease = 2.0
    first_event: list[float] = []
    next_delta: list[float] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        fresh_database("postgres", Path(tmp), migrated=False) as db,
    ):

        def replica() -> ServerProcess:
            return ServerProcess(
                db.url, agent="durable_agents:journaled", args=["--lease", f"{lease:g}"],
                env={"OUTLAST_TEST_STEP_LOG": f"{tmp}/steps.log"}, log_dir=Path(tmp),
            ).start(timeout=60.0)  # fmt: skip

        a, b = replica(), replica()
        try:
            for _ in range(rounds):
                body = {"model": "bench", "input": "steps=60 delay=0.05", "background": True}
                rid = httpx.post(f"{a.base_url}/responses", json=body, timeout=30).json()["id"]
                killed_at: float | None = None
                resumed_at: float | None = None
                with (
                    httpx.Client(timeout=60.0) as http,
                    http.stream(
                        "GET", f"{b.base_url}/responses/{rid}", params={"stream": "true"}
                    ) as stream,
                ):
                    text = ""
                    for line in stream.iter_lines():
                        if not line.startswith("data:") or line == "data: [DONE]":
                            continue
                        event = orjson.loads(line[5:])
                        kind = event["type"]
                        if killed_at is not None and kind == "response.queued":
                            resumed_at = resumed_at or time.perf_counter()
                        if kind == "response.output_text.delta":
                            text += event["delta"]
                            if resumed_at is not None:
                                next_delta.append(time.perf_counter() - killed_at)  # type: ignore[operator]
                                first_event.append(resumed_at - killed_at)  # type: ignore[operator]
                                break
                            if killed_at is None and text.count("\n") >= 5:
                                killed_at = time.perf_counter()
                                a.proc.send_signal(signal.SIGTERM if sigterm else signal.SIGKILL)  # type: ignore[union-attr]
                a.stop(timeout=30.0)
                a.start(timeout=60.0)
                a, b = b, a  # the survivor executes the next one
        finally:
            a.stop()
            b.stop()
    assert len(next_delta) == rounds, next_delta
    how = "SIGTERM" if sigterm else "SIGKILL"
    print(f"{how} of the replica executing a journaled run (lease {lease:g} s), {rounds} rounds:")
    print(f"  to the survivor's first event (its resume): median "
          f"{statistics.median(first_event):.2f} s, max {max(first_event):.2f} s")  # fmt: skip
    print(f"  to the run's next text delta: median {statistics.median(next_delta):.2f} s, "
          f"max {max(next_delta):.2f} s")  # fmt: skip


def rss_mb() -> float:
    """This process's resident set size (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def sleepers(count: int, trace: bool, finished: bool) -> None:
    async def agent(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
        await request.step("before", time.time)
        yield "asleep"
        if not finished:
            await request.sleep("nap", 3600)

    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(f"sqlite:///{tmp}/sleepers.db")
        engine = Engine(Settings(retention_interval=3600.0, max_queued=count + 1), store, agent)
        await engine.start()
        try:
            spec = RunSpec(model="bench", input_items=[], background=True)
            await engine.create(spec, "o")  # warm-up: every code path loaded once
            while engine.running:
                await asyncio.sleep(0.05)
            before = rss_mb()
            if trace:
                tracemalloc.start(8)
            started = time.perf_counter()
            # In waves, as runs arrive over time: what is measured is what sleeping runs keep,
            # not the peak of thousands of runs executing at once.
            for wave in range(0, count, WAVE):
                for _ in range(min(WAVE, count - wave)):
                    await engine.create(spec, "o")
                while engine.running or engine.queued:
                    await asyncio.sleep(0.01)
            while not finished and len(engine.runs.sleeping) < count + 1:
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
            await asyncio.sleep(2.0)  # the last attempts' timers and tasks are gone
            gc.collect()
            after = rss_mb()
            if os.environ.get("OUTLAST_BENCH_MALLOCSTATS"):
                sys._debugmallocstats()
            kept = tracemalloc.get_traced_memory()[0] if trace else 0
            sites = tracemalloc.take_snapshot().statistics("traceback")[:12] if trace else []
            tracemalloc.stop()
        finally:
            await engine.close()
    what = "finished runs (the comparison)" if finished else "durably sleeping runs"
    print(f"{count} {what}, all done {elapsed:.1f} s after the first create "
          f"({WAVE} at a time); 0 running, 0 queued")  # fmt: skip
    if trace:
        print(f"  Python memory they keep: {kept / 1e6:.1f} MB ({kept / count:.0f} bytes each)")
        for stat in sites:
            where = " < ".join(
                f"{Path(f.filename).name}:{f.lineno}" for f in stat.traceback[::-1][:4]
            )
            print(f"    {stat.size / 1e3:8.1f} KB {stat.count:7d} blocks  {where}")
    else:
        print(f"  RSS {before:.1f} MB -> {after:.1f} MB: +{after - before:.1f} MB (target < 20 MB)")


def server_run(server: ServerProcess, steps: int) -> float:
    """Steps per second of one background streamed response read to its end by a client."""
    body = {"model": "bench", "input": f"steps={steps}", "background": True, "stream": True}
    started = time.perf_counter()
    deltas = 0
    with (
        httpx.Client(timeout=60.0) as http,
        http.stream("POST", f"{server.base_url}/responses", json=body) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("data:") and "output_text.delta" in line:
                deltas += 1
            if line.startswith("event: response.completed"):
                break
    elapsed = time.perf_counter() - started
    assert deltas == steps, deltas
    return steps / elapsed


def through_servers(steps: int, runs: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"journaled": [], "direct": []}
    with tempfile.TemporaryDirectory() as tmp:
        servers = {
            name: ServerProcess(Path(tmp) / f"{name}.db", agent=agent).start()
            for name, agent in SERVER_AGENTS.items()
        }
        try:
            for server in servers.values():
                server_run(server, steps)  # warm-up
            for _ in range(runs):
                for name, server in servers.items():
                    results[name].append(server_run(server, steps))
        finally:
            for server in servers.values():
                server.stop()
    return results


async def in_process(
    steps: int, runs: int, sync: bool, work: float, concurrent: int
) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"journaled": [], "direct": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(runs):
            # Interleaved, so that a busy spell of the machine hits both alike.
            for name, agent in agents(steps, sync, work).items():
                results[name].append(await one_run(agent, steps, Path(tmp), concurrent))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--sync", action="store_true", help="steps are plain functions")
    parser.add_argument(
        "--work", type=float, default=0.0, help="each step's function takes this many ms"
    )
    parser.add_argument(
        "--concurrent", type=int, default=1, help="in process: N runs at once (steps/s each)"
    )
    parser.add_argument("--server", action="store_true", help="through outlast serve (HTTP)")
    parser.add_argument("--sleepers", type=int, default=0, help="measure N sleeping runs' RSS")
    parser.add_argument("--trace", action="store_true", help="with --sleepers: tracemalloc")
    parser.add_argument(
        "--finished", action="store_true", help="with --sleepers: runs that end instead"
    )
    parser.add_argument("--takeover", type=int, default=0, help="N hand-overs on PostgreSQL")
    parser.add_argument("--sigterm", action="store_true", help="with --takeover: SIGTERM")
    args = parser.parse_args()
    if args.takeover:
        takeover(args.takeover, args.sigterm)
        return
    if args.sleepers:
        asyncio.run(sleepers(args.sleepers, args.trace, args.finished))
        return
    if args.server:
        results = through_servers(args.steps, args.runs)
    else:
        results = asyncio.run(
            in_process(args.steps, args.runs, args.sync, args.work / 1000, args.concurrent)
        )
    kind = "sync (a thread per step)" if args.sync else "async"
    kind = f"{kind} steps of {args.work:g} ms" if args.work else f"trivial {kind} steps"
    where = "through outlast serve and a streaming client" if args.server else "in process"
    if args.concurrent > 1 and not args.server:
        where += f", {args.concurrent} runs at once (each run's steps/s)"
    print(f"{args.steps} {kind}, each yielding one delta, {where}; "
          f"median of {args.runs}")  # fmt: skip
    medians = {name: statistics.median(values) for name, values in results.items()}
    for name, median in medians.items():
        runs = ", ".join(f"{v:,.0f}" for v in results[name])
        print(f"  {name:10} {median:10,.0f} steps/s   ({runs})")
    ratio = medians["journaled"] / medians["direct"]
    print(f"  ratio journaled / direct: {ratio:.2f}x (target >= 0.8x)")


if __name__ == "__main__":
    main()
