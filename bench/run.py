"""Benchmark: outlast against a bare in-memory baseline, side by side, on this machine.

Run it from the repository root::

    .venv/bin/python bench/run.py                      # every figure, full sizes (~3-4 minutes)
    .venv/bin/python bench/run.py --quick              # smaller sizes, a smoke test (~1 minute)
    .venv/bin/python bench/run.py --only throughput    # one figure (comma-separate several)
    .venv/bin/python bench/run.py --servers baseline   # only one side
    .venv/bin/python bench/run.py --wait-quiet 120     # on a shared machine: wait for idle CPU
    .venv/bin/python bench/run.py --db postgres        # outlast on PostgreSQL (fresh database)

For every figure, each server is started fresh as its own subprocess on a random free loopback
port, warmed up, measured, and stopped; the baseline first, then outlast:

- baseline: ``python bench/baseline.py --port P``, a minimal Starlette/uvicorn app that serves
  the same endpoints and events from memory, with no storage (see its docstring).
- outlast: ``python -m outlast serve --port P --db sqlite:///TMPDIR/bench.db
  --agent outlast.agents.synthetic:agent --max-running 2000 --max-queued 10000``.

Both host the same synthetic agent (prompt ``deltas=N size=B delay=S``: N text deltas of B bytes,
S seconds before each). The client is a lean raw-HTTP/1.1 asyncio client (``bench/rawhttp.py``,
on uvloop): it decodes only ``data:`` lines with orjson, because it shares the two cores with the
server and must not be the bottleneck. Every stream the client reads is checked: sequence
numbers 0..N-1 with no gap and no duplicate, the expected number of deltas, a terminal
``response.completed``.

The figures, and the targets they are judged against (PASS/FAIL is printed for each):

1. throughput: one background+stream run of 20,000 deltas of 16 bytes, delay 0; events per
   second at the client, from sending the POST to receiving the terminal event (median of 5).
   Target: outlast >= 50% of the baseline.
2. concurrency: 200 background+stream runs at once, 100 deltas each, delay 0.05 s (ideal 5 s);
   all must complete with every event exactly once; wall time: the slowest run's, from its POST
   to its terminal event. Target: outlast <= 1.2x the baseline's wall time. The runs of this
   figure and the next two arrive one per millisecond, not all at once (``ARRIVAL_INTERVAL``).
   memory (part 2 of the same figure; ``--only concurrency`` runs both): 1,000 runs at once, 100
   deltas each, delay 0.2 s; all must complete; the server's peak RSS (VmRSS from /proc, sampled
   every 50 ms) minus its idle RSS (after a warm-up, before the load), per in-flight run.
   Target: outlast <= 100 KB per run (the baseline is reported too).
   idle (many mostly idle runs): 2,000 runs at once, 30 deltas each, 1 s apart; all must
   complete exactly once. With the concurrency figure, this is what issue 16's CPU targets are
   measured on: one event per run per tick, so small batches and many snapshots.
3. resume: a long run (100,000 deltas, delay 0.001 s) is started and followed by one live
   reader; 200 times, a new connection sends ``GET /v1/responses/{id}?stream=true&starting_after=N``
   with N drawn from the middle half of what exists, and the time from sending the request to
   receiving the first event (which must be N+1) is measured. p50 and p95. Target: outlast
   p50 < 10 ms.
4. ttfd (time to first delta): 200 sequential background+stream POSTs (deltas=1, delay 0) on one
   keep-alive connection; time from sending the POST to receiving the first
   ``response.output_text.delta``. p50 and p95. Target: outlast p50 within 5 ms of the baseline's.
5. polling: a finished response; 20 keep-alive clients GET /v1/responses/{id} for 5 s; requests
   per second. Uses ``wrk`` if it is installed (one thread, 20 connections), else an asyncio
   raw-HTTP client (which may itself be the bottleneck); the tool used is reported.
   Target: outlast >= 5,000 req/s.

For every figure, the server's CPU seconds from after its warm-up to the end of the figure
(utime+stime of the server process, from /proc/PID/stat) and that per event delivered to the
client (per request, for polling). With ``--db postgres``, outlast runs on a fresh PostgreSQL
database per figure and the CPU of the backends serving that database is added (see
``DatabaseCPU``). Targets (issue 16): the server's CPU at most 1.5x the baseline's for
concurrency and idle on SQLite; the server's and the database's together at most 2x on
PostgreSQL.

Ratios are outlast / baseline. Results (every raw figure, the command, the machine) are written
to ``bench/results/latest.json`` and the servers' logs to ``bench/results/logs/`` (both
gitignored). A figure that errors or times out on one server is reported as ERROR (and FAIL)
with what happened; the others still run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

import orjson

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

from rawhttp import Connection, HTTPError  # noqa: E402

HOST = "127.0.0.1"
FIGURES = ["throughput", "concurrency", "memory", "idle", "resume", "ttfd", "polling"]
SERVERS = ["baseline", "outlast"]
# Events of one background text run besides its deltas: created, queued, in_progress,
# output_item.added, content_part.added, output_text.done, content_part.done, output_item.done,
# completed.
FIXED_EVENTS = 9
DEFAULT_PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
# --profile: where outlast's cProfile output goes (one file per figure), else None.
PROFILE_DIR: Path | None = None
loads = orjson.loads


@dataclass
class Sizes:
    throughput_deltas: int = 20_000
    throughput_size: int = 16
    throughput_repeat: int = 5
    concurrency_runs: int = 200
    concurrency_deltas: int = 100
    concurrency_delay: float = 0.05
    memory_runs: int = 1000
    memory_deltas: int = 100
    memory_delay: float = 0.2
    idle_runs: int = 2000
    idle_deltas: int = 30
    idle_delay: float = 1.0
    resume_deltas: int = 100_000
    resume_delay: float = 0.001
    resume_reconnects: int = 200
    resume_head_start: float = 2.0
    ttfd_requests: int = 200
    polling_clients: int = 20
    polling_seconds: float = 5.0

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            throughput_deltas=3000,
            throughput_repeat=1,
            concurrency_runs=50,
            concurrency_delay=0.02,
            concurrency_deltas=50,
            memory_runs=200,
            memory_deltas=50,
            memory_delay=0.05,
            idle_runs=300,
            idle_deltas=10,
            resume_reconnects=30,
            resume_head_start=1.0,
            ttfd_requests=30,
            polling_seconds=2.0,
        )


class FigureError(Exception):
    """A figure could not be measured: the server misbehaved (say what happened)."""


# -- servers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def server_command(kind: str, port: int, tmpdir: Path, db_url: str | None = None) -> list[str]:
    """The command of one server; outlast on ``db_url`` (default: SQLite in ``tmpdir``)."""
    if kind == "baseline":
        return [sys.executable, str(BENCH_DIR / "baseline.py"), "--port", str(port)]
    return [
        sys.executable, "-m", "outlast", "serve",
        "--port", str(port),
        "--db", db_url or f"sqlite:///{tmpdir}/bench.db",
        "--agent", "outlast.agents.synthetic:agent",
        "--max-running", "2000",
        "--max-queued", "10000",
    ]  # fmt: skip


class RSSSampler(threading.Thread):
    """Reads VmRSS of one process every ``interval`` seconds; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_kb = 0
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            rss = read_rss_kb(self.pid)
            if rss is not None:
                self.peak_kb = max(self.peak_kb, rss)
                self.samples += 1
            self._halt.wait(self.interval)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return self.peak_kb


def read_rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def read_cpu_s(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


class DatabaseCPU(threading.Thread):
    """CPU seconds spent by the PostgreSQL backends serving one database.

    A backend's process title is ``postgres: USER DBNAME HOST(PORT) STATE``: every 0.2 s, /proc is
    scanned for the titles naming ``dbname`` and each one's utime+stime kept, so a backend that
    exits mid-measurement still counts (up to its last sample). What is counted is the work
    done for the server's queries, WAL flushes at commit included (a backend flushes its own
    commit record with ``synchronous_commit`` on); the cluster's shared background processes
    (walwriter, checkpointer), which other clients of the same cluster also keep busy, are not.
    """

    def __init__(self, dbname: str, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.needle = f" {dbname} ".encode()
        self.interval = interval
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._halt = threading.Event()

    def sample(self) -> None:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                    title = f.read()
            except OSError:
                continue  # it has exited
            if not title.startswith(b"postgres: ") or self.needle not in title:
                continue
            # Only then its /proc/PID/stat: not that of every process on the machine.
            pid = int(entry.name)
            cpu = read_cpu_s(pid)
            if cpu is not None:
                self.first.setdefault(pid, cpu)
                self.last[pid] = cpu

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def since_start(self) -> float:
        """CPU seconds since the first sample (a backend first seen later counts whole)."""
        return sum(self.last[pid] - self.first[pid] for pid in self.last)

    def stop(self) -> float:
        self._halt.set()
        self.join()
        self.sample()
        return self.since_start()


class Database:
    """A fresh PostgreSQL database for one figure (``--db postgres``; ``async with`` in
    bench/cluster.py), dropped afterwards."""

    def __init__(self, admin_url: str) -> None:
        import secrets

        self.admin_url = admin_url
        self.name = f"outlast_bench_{secrets.token_hex(4)}"
        self.url = f"{admin_url.rpartition('/')[0]}/{self.name}"

    async def _admin(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def create(self) -> None:
        await self._admin(f'CREATE DATABASE "{self.name}"')

    async def drop(self) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    async def __aenter__(self) -> Database:
        await self.create()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.drop()


class Server:
    def __init__(self, kind: str, figure: str, logs_dir: Path, db_url: str | None = None) -> None:
        self.kind = kind
        self.figure = figure
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f"outlast-bench-{kind}-"))
        self.port = free_port()
        self.cmd = server_command(kind, self.port, self.tmpdir, db_url)
        if PROFILE_DIR is not None and kind == "outlast":
            # cProfile of the server's main thread (the event loop), written when it exits.
            profile = PROFILE_DIR / f"{figure}-{kind}.prof"
            self.cmd[1:1] = ["-m", "cProfile", "-o", str(profile)]
        self.log_path = logs_dir / f"{figure}-{kind}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.exit_note = ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> Server:
        env = dict(os.environ)
        env.pop("OUTLAST_API_KEYS", None)
        log = open(self.log_path, "wb")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            self.cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise FigureError(
                    f"{self.kind} exited with {self.proc.returncode} at start-up:\n{self.log_tail()}"
                )
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5) as sock:
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    head = sock.recv(4096)
                if head.startswith(b"HTTP/1.1 200"):
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise FigureError(f"{self.kind} did not become healthy in {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.exit_note = f"did not exit within {timeout} s of SIGTERM; killed"
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.tmpdir, ignore_errors=True)


# -- client helpers ----------------------------------------------------------------------------


def create_body(deltas: int, size: int = 16, delay: float = 0.0, stream: bool = True) -> bytes:
    return orjson.dumps(
        {
            "model": "synthetic",
            "input": f"deltas={deltas} size={size} delay={delay}",
            "background": True,
            "stream": stream,
        }
    )


class StreamCheck:
    """Checks one stream as it arrives: gapless, duplicate-free sequence numbers from ``first``."""

    __slots__ = ("deltas", "dups", "expect", "first_gap", "last_type", "n", "response_id")

    def __init__(self, first: int = 0) -> None:
        self.expect = first
        self.n = 0
        self.deltas = 0
        self.dups = 0
        self.first_gap: tuple[int, int] | None = None
        self.last_type = ""
        self.response_id = ""

    def add(self, event: dict[str, Any]) -> bool:
        """Record one event; True when it is terminal."""
        seq = event.get("sequence_number")
        if seq != self.expect:
            if isinstance(seq, int) and seq < self.expect:
                self.dups += 1
            elif self.first_gap is None:
                self.first_gap = (self.expect, seq if isinstance(seq, int) else -1)
        if isinstance(seq, int) and seq >= self.expect:
            self.expect = seq + 1
        self.n += 1
        kind = event.get("type", "")
        self.last_type = kind
        if kind == "response.output_text.delta":
            self.deltas += 1
            return False
        if kind == "response.created":
            self.response_id = event["response"]["id"]
        return kind in ("response.completed", "response.failed", "response.incomplete")

    def problems(self, deltas: int | None) -> list[str]:
        found = []
        if self.first_gap is not None:
            found.append(f"gap: expected seq {self.first_gap[0]}, got {self.first_gap[1]}")
        if self.dups:
            found.append(f"{self.dups} duplicate/out-of-order events")
        if deltas is not None and self.deltas != deltas:
            found.append(f"{self.deltas} deltas, expected {deltas}")
        if self.last_type != "response.completed":
            found.append(f"last event {self.last_type or 'none'!r}, expected response.completed")
        return found


async def stream_run(
    port: int,
    body: bytes,
    on_first_delta: Callable[[float], None] | None = None,
    conn: Connection | None = None,
) -> tuple[StreamCheck, float, float]:
    """POST one background+stream run and read it to its terminal event.

    Returns the check, the time the POST was sent and the time the terminal event arrived.
    """
    own = conn is None
    if conn is None:
        conn = await Connection(HOST, port).connect()
    check = StreamCheck()
    try:
        t0 = time.perf_counter()
        conn.send("POST", "/v1/responses", body)
        status, headers = await conn.read_head()
        if status != 200:
            raw = await conn.read_body(headers)
            raise FigureError(f"POST /v1/responses answered {status}: {raw[:300]!r}")
        first_delta_seen = on_first_delta is None
        t_end = 0.0
        async for batch in conn.data_batches(headers):
            now = time.perf_counter()
            if t_end:
                raise FigureError(f"{len(batch)} events after the terminal event")
            for data in batch:
                event = loads(data)
                if check.add(event):
                    if own:
                        return check, t0, now
                    # Keep reading to the end of the body, so the connection can be reused.
                    t_end = now
                    break
                if not first_delta_seen and event.get("type") == "response.output_text.delta":
                    first_delta_seen = True
                    assert on_first_delta is not None
                    on_first_delta(now - t0)
        if t_end:
            return check, t0, t_end
        raise FigureError(
            f"stream ended after {check.n} events without a terminal event "
            f"(last {check.last_type!r})"
        )
    finally:
        if own:
            conn.close()


# The runs of a many-runs figure arrive one per millisecond (open loop), not all at once: when
# each run emits is then set by this schedule, the same for every server, and spread evenly
# over the agent's ticks, as the runs of a real server's clients are. Fired all at once, they
# were created in clumps whose sizes depended on the client's state (a figure run after
# another got ~80 events a group commit, run first ~280, and its CPU moved by a third).
ARRIVAL_INTERVAL = 0.001


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def warm_up(srv: Server) -> None:
    """A few small runs, so that imports, caches and the database exist before measuring."""
    await asyncio.gather(*(stream_run(srv.port, create_body(20)) for _ in range(5)))
    for _ in range(3):
        await stream_run(srv.port, create_body(20))


async def wait_for(aws: Awaitable[Any], timeout: float, what: str) -> Any:
    try:
        return await asyncio.wait_for(aws, timeout)
    except TimeoutError:
        raise FigureError(f"{what}: no result within {timeout:.0f} s") from None


# -- figures -----------------------------------------------------------------------------------


async def fig_throughput(srv: Server, sizes: Sizes) -> dict[str, Any]:
    deltas = sizes.throughput_deltas
    body = create_body(deltas, sizes.throughput_size, 0)
    runs = []
    for _ in range(sizes.throughput_repeat):
        cpu0, client0 = read_cpu_s(srv.pid), time.process_time()
        check, t0, t1 = await wait_for(stream_run(srv.port, body), 120, "throughput run")
        cpu1, client1 = read_cpu_s(srv.pid), time.process_time()
        problems = check.problems(deltas)
        if problems:
            raise FigureError("throughput run: " + "; ".join(problems))
        elapsed = t1 - t0
        server_cpu = (cpu1 or 0) - (cpu0 or 0)
        runs.append(
            {
                "events": check.n,
                "seconds": elapsed,
                "events_per_s": check.n / elapsed,
                "server_cpu_s": server_cpu,
                "server_cpu_us_per_event": server_cpu / check.n * 1e6,
                "client_cpu_s": client1 - client0,
            }
        )
        await asyncio.sleep(0.3)
    best = statistics.median(r["events_per_s"] for r in runs)
    return {"events_per_s": best, "runs": runs}


async def many_runs(
    srv: Server, runs: int, deltas: int, delay: float, timeout: float
) -> dict[str, Any]:
    """``runs`` background+stream runs at once, the ``i``-th POSTed ``i`` times
    :data:`ARRIVAL_INTERVAL` after the first; every stream checked."""
    body = create_body(deltas, 16, delay)
    durations: list[float] = []
    failures: list[str] = []
    checks: list[StreamCheck] = []

    async def one(start_at: float) -> None:
        await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
        try:
            check, sent, t1 = await stream_run(srv.port, body)
            checks.append(check)
            problems = check.problems(deltas)
            if problems:
                failures.append(f"{check.response_id}: " + "; ".join(problems))
            else:
                durations.append(t1 - sent)
        except (FigureError, HTTPError, OSError) as exc:
            failures.append(f"{type(exc).__name__}: {exc}")

    t0 = time.perf_counter()
    tasks = [asyncio.create_task(one(t0 + i * ARRIVAL_INTERVAL)) for i in range(runs)]
    _, pending = await asyncio.wait(tasks, timeout=timeout + runs * ARRIVAL_INTERVAL)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    result: dict[str, Any] = {
        "events": sum(check.n for check in checks),
        "runs": runs,
        "completed_exactly_once": len(durations),
        # The slowest run, from its POST to its terminal event (ideally deltas * delay).
        "wall_s": max(durations) if durations else time.perf_counter() - t0,
        "ideal_s": deltas * delay,
        "arrivals_s": (runs - 1) * ARRIVAL_INTERVAL,
        "failures": failures[:10],
        "failure_count": len(failures),
        "timed_out": len(pending),
    }
    if pending:
        result["failures"].append(f"{len(pending)} streams still open after {timeout:.0f} s")
    return result


async def fig_concurrency(srv: Server, sizes: Sizes) -> dict[str, Any]:
    ideal = sizes.concurrency_deltas * sizes.concurrency_delay
    return await many_runs(
        srv, sizes.concurrency_runs, sizes.concurrency_deltas, sizes.concurrency_delay,
        timeout=ideal * 6 + 60,
    )  # fmt: skip


async def fig_idle(srv: Server, sizes: Sizes) -> dict[str, Any]:
    """Many mostly idle runs: one event per run per tick, so every commit and every write is small."""
    ideal = sizes.idle_deltas * sizes.idle_delay
    return await many_runs(
        srv, sizes.idle_runs, sizes.idle_deltas, sizes.idle_delay, timeout=ideal * 4 + 60
    )


async def fig_memory(srv: Server, sizes: Sizes) -> dict[str, Any]:
    await asyncio.sleep(1.0)
    idle_samples = []
    for _ in range(10):
        idle_samples.append(read_rss_kb(srv.pid) or 0)
        await asyncio.sleep(0.05)
    idle = int(statistics.median(idle_samples))
    sampler = RSSSampler(srv.pid)
    sampler.start()
    ideal = sizes.memory_deltas * sizes.memory_delay
    try:
        result = await many_runs(
            srv, sizes.memory_runs, sizes.memory_deltas, sizes.memory_delay,
            timeout=ideal * 6 + 60,
        )  # fmt: skip
    finally:
        peak = sampler.stop()
    result.update(
        {
            "idle_rss_kb": idle,
            "peak_rss_kb": peak,
            "rss_samples": sampler.samples,
            "kb_per_run": (peak - idle) / sizes.memory_runs,
            "after_rss_kb": read_rss_kb(srv.pid),
        }
    )
    return result


async def fig_resume(srv: Server, sizes: Sizes) -> dict[str, Any]:
    rng = random.Random(1234)
    body = create_body(sizes.resume_deltas, 16, sizes.resume_delay)
    follower = await Connection(HOST, srv.port).connect()
    follower.send("POST", "/v1/responses", body)
    status, headers = await follower.read_head()
    if status != 200:
        raise FigureError(f"POST answered {status}")
    head = {"seq": -1}
    follow_check = StreamCheck()
    follow_done = asyncio.get_running_loop().create_future()

    async def follow() -> None:
        try:
            async for batch in follower.data_batches(headers):
                for data in batch:
                    event = loads(data)
                    head["seq"] = event["sequence_number"]
                    if follow_check.add(event):
                        follow_done.set_result(True)
                        return
            follow_done.set_result(False)
        except Exception as exc:
            if not follow_done.done():
                follow_done.set_exception(exc)

    follow_task = asyncio.create_task(follow())
    deadline = time.monotonic() + 30
    while not follow_check.response_id and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    response_id = follow_check.response_id
    if not response_id:
        raise FigureError("the long run's stream sent no response.created in 30 s")
    await asyncio.sleep(sizes.resume_head_start)

    latencies: list[float] = []
    problems: list[str] = []
    heads: list[int] = []
    for _ in range(sizes.resume_reconnects):
        if follow_done.done():
            problems.append("the long run ended before the reconnects were done")
            break
        known = head["seq"]
        after = rng.randint(known // 4, (3 * known) // 4)
        heads.append(known)
        conn = await Connection(HOST, srv.port).connect()
        try:
            t0 = time.perf_counter()
            conn.send("GET", f"/v1/responses/{response_id}?stream=true&starting_after={after}")
            status, h = await wait_for(conn.read_head(), 30, "resume: response head")
            if status != 200:
                raise FigureError(f"resume GET answered {status}")

            async def first_event(
                conn: Connection = conn, h: dict[bytes, bytes] = h
            ) -> tuple[float, dict[str, Any]]:
                async for batch in conn.data_batches(h):
                    return time.perf_counter(), loads(batch[0])
                raise FigureError("resume stream ended with no event")

            t1, event = await wait_for(first_event(), 30, "resume: first event")
            latencies.append(t1 - t0)
            if event.get("sequence_number") != after + 1:
                problems.append(
                    f"starting_after={after}: first event seq {event.get('sequence_number')}"
                )
        finally:
            conn.close()
        await asyncio.sleep(0.01)

    # End the long run; the follower must see a terminal event and every event exactly once.
    cancel = await Connection(HOST, srv.port).connect()
    try:
        status, _, _ = await wait_for(
            cancel.request("POST", f"/v1/responses/{response_id}/cancel", b"{}"), 30, "cancel"
        )
    finally:
        cancel.close()
    t_cancel = time.perf_counter()
    try:
        await wait_for(asyncio.shield(follow_done), 10, "follower after cancel")
        follower_end = f"ended {time.perf_counter() - t_cancel:.3f} s after cancel with {follow_check.last_type}"
    except FigureError as exc:
        follower_end = str(exc)
        problems.append(f"live follower: {exc}")
    follow_task.cancel()
    follower.close()
    if follow_check.first_gap or follow_check.dups:
        problems.append("live follower: " + "; ".join(follow_check.problems(None)[:-1]))
    lat_ms = [x * 1000 for x in latencies]
    return {
        "response_id": response_id,
        "reconnects": len(latencies),
        "p50_ms": pct(lat_ms, 0.5),
        "p95_ms": pct(lat_ms, 0.95),
        "max_ms": max(lat_ms) if lat_ms else None,
        "head_seq_range": [min(heads), max(heads)] if heads else None,
        "cancel_status": status,
        "follower": follower_end,
        "follower_events": follow_check.n,
        "events": follow_check.n,
        "problems": problems[:10],
    }


async def fig_ttfd(srv: Server, sizes: Sizes) -> dict[str, Any]:
    body = create_body(1, 16, 0)
    samples: list[float] = []
    conn = await Connection(HOST, srv.port).connect()
    reconnects = 0
    events = 0
    try:
        for _ in range(sizes.ttfd_requests):
            if not conn.reusable:
                conn.close()
                conn = await Connection(HOST, srv.port).connect()
                reconnects += 1
            got: list[float] = []
            check, _, _ = await wait_for(
                stream_run(srv.port, body, on_first_delta=got.append, conn=conn), 30, "ttfd run"
            )
            problems = check.problems(1)
            if problems or not got:
                raise FigureError("ttfd run: " + "; ".join(problems or ["no delta"]))
            samples.append(got[0] * 1000)
            events += check.n
    finally:
        conn.close()
    return {
        "events": events,
        "requests": len(samples),
        "p50_ms": pct(samples, 0.5),
        "p95_ms": pct(samples, 0.95),
        "min_ms": min(samples),
        "reconnects": reconnects,
    }


async def finished_response(srv: Server) -> tuple[str, bytes]:
    conn = await Connection(HOST, srv.port).connect()
    try:
        status, _, raw = await conn.request(
            "POST", "/v1/responses", create_body(10, 16, 0, stream=False)
        )
        if status != 200:
            raise FigureError(f"POST (background, no stream) answered {status}: {raw[:300]!r}")
        response_id = loads(raw)["id"]
        deadline = time.monotonic() + 30
        while True:
            status, _, raw = await conn.request("GET", f"/v1/responses/{response_id}")
            if status == 200 and loads(raw)["status"] == "completed":
                return response_id, raw
            if time.monotonic() > deadline:
                raise FigureError(f"response did not complete in 30 s: {status} {raw[:300]!r}")
            await asyncio.sleep(0.05)
    finally:
        conn.close()


def run_wrk(port: int, path: str, clients: int, seconds: float) -> dict[str, Any]:
    cmd = ["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--latency",
           f"http://{HOST}:{port}{path}"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:(.*)", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p50_ms = None
    if p50:
        p50_ms = float(p50.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p50.group(2)]
    if not rps:
        raise FigureError(f"could not parse wrk output:\n{out}")
    return {
        "tool": "wrk",
        "command": shlex.join(cmd),
        "requests_per_s": float(rps.group(1)),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1).strip() if errors else "",
        "latency_p50_ms": p50_ms,
    }


async def run_async_poller(port: int, path: str, clients: int, seconds: float) -> dict[str, Any]:
    counts = [0] * clients
    bad = [0]
    stop_at = time.perf_counter() + seconds

    async def client(i: int) -> None:
        conn = await Connection(HOST, port).connect()
        try:
            while time.perf_counter() < stop_at:
                status, _, _ = await conn.request("GET", path)
                if status != 200:
                    bad[0] += 1
                counts[i] += 1
        finally:
            conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - t0
    return {
        "tool": "asyncio raw-HTTP client (wrk not found)",
        "requests_per_s": sum(counts) / elapsed,
        "non_2xx": bad[0],
    }


async def fig_polling(srv: Server, sizes: Sizes) -> dict[str, Any]:
    response_id, raw = await finished_response(srv)
    path = f"/v1/responses/{response_id}"
    if shutil.which("wrk"):
        result = await asyncio.to_thread(
            run_wrk, srv.port, path, sizes.polling_clients, sizes.polling_seconds
        )
    else:
        result = await run_async_poller(
            srv.port, path, sizes.polling_clients, sizes.polling_seconds
        )
    result["body_bytes"] = len(raw)
    result["requests"] = round(result["requests_per_s"] * sizes.polling_seconds)
    if result.get("non_2xx"):
        raise FigureError(f"{result['non_2xx']} non-2xx answers while polling")
    return result


FIGURE_FUNCS: dict[str, Callable[[Server, Sizes], Awaitable[dict[str, Any]]]] = {
    "throughput": fig_throughput,
    "concurrency": fig_concurrency,
    "memory": fig_memory,
    "idle": fig_idle,
    "resume": fig_resume,
    "ttfd": fig_ttfd,
    "polling": fig_polling,
}


# -- the report --------------------------------------------------------------------------------


def _get(results: dict[str, Any], fig: str, kind: str, key: str) -> Any:
    value = results.get(fig, {}).get(kind)
    if not isinstance(value, dict) or "error" in value:
        return None
    return value.get(key)


def checks(results: dict[str, Any], sizes: Sizes, db: str = "sqlite") -> list[dict[str, Any]]:
    """One row per printed figure: values, ratio outlast/baseline, target, verdict."""
    rows: list[dict[str, Any]] = []

    def row(fig: str, label: str, key: str, unit: str, target: str,
            verdict: Callable[[Any, Any], bool | None] | None) -> None:  # fmt: skip
        if fig not in results:
            return
        b = _get(results, fig, "baseline", key)
        o = _get(results, fig, "outlast", key)
        ratio = o / b if isinstance(o, int | float) and isinstance(b, int | float) and b else None
        ok = None
        if verdict is not None:
            if "outlast" in results[fig] and o is None:
                ok = False  # outlast errored
            elif o is not None:
                ok = verdict(o, b)
        errors = {
            k: v["error"] for k, v in results[fig].items() if isinstance(v, dict) and "error" in v
        }
        rows.append({"figure": fig, "label": label, "key": key, "unit": unit, "baseline": b,
                     "outlast": o, "ratio": ratio, "target": target, "pass": ok,
                     "errors": errors})  # fmt: skip

    c_runs, m_runs = sizes.concurrency_runs, sizes.memory_runs
    row("throughput", f"throughput ({sizes.throughput_deltas:,} deltas)", "events_per_s",
        "events/s", ">= 50% of baseline",
        lambda o, b: b is not None and o >= 0.5 * b)  # fmt: skip
    row("concurrency", f"{c_runs} runs, all complete exactly once", "completed_exactly_once",
        "runs", f"= {c_runs}", lambda o, b: o == c_runs)  # fmt: skip
    row("concurrency", f"{c_runs} runs wall time (ideal "
        f"{sizes.concurrency_deltas * sizes.concurrency_delay:g} s)", "wall_s", "s",
        "<= 1.2x baseline", lambda o, b: b is not None and o <= 1.2 * b)  # fmt: skip
    row("memory", f"{m_runs} runs, all complete exactly once", "completed_exactly_once", "runs",
        f"= {m_runs}", lambda o, b: o == m_runs)  # fmt: skip
    row("memory", f"{m_runs} runs: RSS per in-flight run", "kb_per_run", "KB", "<= 100 KB",
        lambda o, b: o <= 100)  # fmt: skip
    row("memory", "  idle RSS", "idle_rss_kb", "KB", "", None)
    row("memory", "  peak RSS", "peak_rss_kb", "KB", "", None)
    i_runs = sizes.idle_runs
    row("idle", f"{i_runs} runs x {sizes.idle_deltas} deltas, {sizes.idle_delay:g} s apart, "
        "all complete exactly once", "completed_exactly_once", "runs", f"= {i_runs}",
        lambda o, b: o == i_runs)  # fmt: skip
    # Issue 16's CPU targets: on SQLite the server's CPU, on PostgreSQL the server's and the
    # database backends' together, against the baseline's (which has no database).
    cpu_key, cpu_label, cpu_limit = (
        ("total_cpu_s", "server + database CPU", 2.0) if db == "postgres"
        else ("server_cpu_s", "server CPU", 1.5)
    )  # fmt: skip
    for fig, label in (("concurrency", f"{c_runs} runs"), ("idle", f"{i_runs} runs")):
        row(fig, f"{label}: {cpu_label}", cpu_key, "s", f"<= {cpu_limit:g}x baseline",
            lambda o, b: b is not None and o <= cpu_limit * b)  # fmt: skip
    if db == "postgres":
        for fig in ("concurrency", "idle"):
            row(fig, "  of which the database", "database_cpu_s", "s", "", None)
    for fig in FIGURES:
        per = "request" if fig == "polling" else "event"
        row(fig, f"{fig}: {cpu_label} per {per}", cpu_key.replace("_s", "_us_per_event"),
            "us", "", None)  # fmt: skip
    row("resume", "resume: first event p50", "p50_ms", "ms", "< 10 ms", lambda o, b: o < 10)
    row("resume", "resume: first event p95", "p95_ms", "ms", "", None)
    row("ttfd", "time to first delta p50", "p50_ms", "ms", "<= baseline + 5 ms",
        lambda o, b: b is not None and o <= b + 5)  # fmt: skip
    row("ttfd", "time to first delta p95", "p95_ms", "ms", "", None)
    tool = _get(results, "polling", "outlast", "tool") or _get(
        results, "polling", "baseline", "tool"
    )
    row("polling", f"polling ({sizes.polling_clients} clients, {tool or '?'})", "requests_per_s",
        "req/s", ">= 5,000 req/s", lambda o, b: o >= 5000)  # fmt: skip
    # A figure whose side errored still gets a FAIL row, even if none of its keys exist.
    for fig in results:
        if not any(r["figure"] == fig for r in rows):
            row(fig, fig, "-", "", "", lambda o, b: False)
    return rows


def fmt(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("events/s", "req/s", "runs") or isinstance(value, int):
        return f"{value:,.0f}"
    if unit == "KB":
        return f"{value:,.1f}"
    if unit == "ms":
        return f"{value:.2f}"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"


def print_table(rows: list[dict[str, Any]]) -> None:
    header = ["figure", "baseline", "outlast", "outlast/baseline", "target", "result"]
    body = []
    for r in rows:
        unit = r["unit"]
        verdict = {True: "PASS", False: "FAIL", None: ""}[r["pass"]]
        b = "ERROR" if "baseline" in r["errors"] else fmt(r["baseline"], unit)
        o = "ERROR" if "outlast" in r["errors"] else fmt(r["outlast"], unit)
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-"
        body.append(
            [f"{r['label']} [{unit}]" if unit else r["label"], b, o, ratio, r["target"], verdict]
        )
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=False)]
        for line in [header, *body]:
            print("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=False)))
        return
    from rich.markup import escape

    table = Table(title="outlast vs baseline")
    for name in header:
        table.add_column(name, justify="left" if name in ("figure", "target") else "right")
    for line in body:
        style = {"PASS": "green", "FAIL": "red"}.get(line[-1], "")
        cells = [escape(str(cell)) for cell in line[:-1]]
        table.add_row(*cells, f"[{style}]{line[-1]}[/]" if style else "")
    Console(width=max(120, shutil.get_terminal_size().columns)).print(table)


# -- main --------------------------------------------------------------------------------------


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True
            ).stdout.strip()
        except OSError:
            return ""

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "src"))}


def system_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    """CPU seconds of this process and its reaped children (servers, wrk)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


async def wait_quiet(limit_s: float, cores: float = 0.2, window: float = 2.0) -> float:
    """Wait (up to ``limit_s``) until the machine's busy CPU over ``window`` s is below
    ``cores``; returns the busy cores last seen."""
    deadline = time.monotonic() + limit_s
    while True:
        busy0 = system_busy_s()
        await asyncio.sleep(window)
        busy = (system_busy_s() - busy0) / window
        if busy < cores or time.monotonic() >= deadline:
            return busy


async def store_commits(srv: Server) -> tuple[float, float] | None:
    """outlast's group commits so far and the events they carried (from /metrics), or None."""
    if srv.kind != "outlast":
        return None
    conn = await Connection(HOST, srv.port).connect()
    try:
        status, _, raw = await conn.request("GET", "/metrics")
    finally:
        conn.close()
    if status != 200:
        return None
    found = dict(
        re.findall(rb"^outlast_store_commit_batch_events_(count|sum) ([0-9.e+]+)$", raw, re.M)
    )
    if b"count" not in found or b"sum" not in found:
        return None
    return float(found[b"count"]), float(found[b"sum"])


def add_cpu(result: dict[str, Any], server_s: float, database_s: float | None) -> None:
    """The server's (and its database's) CPU seconds over the figure, and per event delivered
    (per request, for polling)."""
    result["server_cpu_s"] = server_s
    total = server_s
    if database_s is not None:
        result["database_cpu_s"] = database_s
        total += database_s
    result["total_cpu_s"] = total
    count = result.get("events") or result.get("requests")
    if count:
        result["server_cpu_us_per_event"] = server_s / count * 1e6
        result["total_cpu_us_per_event"] = total / count * 1e6


async def run_figure(
    fig: str, kind: str, sizes: Sizes, logs_dir: Path, admin_url: str | None = None
) -> dict[str, Any]:
    """One figure on one fresh server; outlast on a fresh PostgreSQL database with ``admin_url``."""
    database = Database(admin_url) if admin_url and kind == "outlast" else None
    if database is not None:
        await database.create()
    srv = Server(kind, fig, logs_dir, database.url if database else None)
    started = time.perf_counter()
    busy0, own0 = system_busy_s(), own_cpu_s()
    try:
        await asyncio.to_thread(srv.start)
        await wait_for(warm_up(srv), 60, "warm-up")
        db_cpu = DatabaseCPU(database.name) if database is not None else None
        if db_cpu is not None:
            db_cpu.sample()
            db_cpu.start()
        commits0 = await store_commits(srv)
        cpu0 = read_cpu_s(srv.pid) or 0.0
        try:
            result = await FIGURE_FUNCS[fig](srv, sizes)
        finally:
            cpu1 = read_cpu_s(srv.pid) or cpu0
            db_s = db_cpu.stop() if db_cpu is not None else None
        add_cpu(result, cpu1 - cpu0, db_s)
        commits1 = await store_commits(srv)
        if commits0 is not None and commits1 is not None and commits1[0] > commits0[0]:
            result["commits"] = commits1[0] - commits0[0]
            result["events_per_commit"] = (commits1[1] - commits0[1]) / result["commits"]
        if not srv.alive():
            raise FigureError(f"the server died (exit {srv.proc.returncode if srv.proc else '?'})")
    except FigureError as exc:
        result = {"error": str(exc)}
    except Exception as exc:
        result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    finally:
        result_alive = srv.alive()
        await asyncio.to_thread(srv.stop)
        if database is not None:
            await database.drop()
    if not result_alive and "error" not in result:
        result = {"error": "the server was not running at the end of the figure"}
    if "error" in result:
        result["server_log_tail"] = srv.log_tail()
    if srv.exit_note:
        result["shutdown"] = srv.exit_note
    result["server_command"] = shlex.join(srv.cmd)
    elapsed = time.perf_counter() - started
    result["seconds"] = round(elapsed, 2)
    # Noise: CPU that neither the bench nor its server used while the figure ran.
    other = max(0.0, (system_busy_s() - busy0) - (own_cpu_s() - own0))
    result["other_cpu_s"] = round(other, 2)
    result["other_cpu_cores"] = round(other / elapsed, 2) if elapsed else 0.0
    return result


def summary_line(fig: str, kind: str, r: dict[str, Any]) -> str:
    if "error" in r:
        return f"ERROR: {r['error'].splitlines()[0]}"
    keys = {
        "throughput": ["events_per_s"],
        "concurrency": ["completed_exactly_once", "wall_s", "failure_count"],
        "memory": ["completed_exactly_once", "wall_s", "idle_rss_kb", "peak_rss_kb", "kb_per_run"],
        "idle": ["completed_exactly_once", "wall_s", "failure_count"],
        "resume": ["reconnects", "p50_ms", "p95_ms", "max_ms", "follower"],
        "ttfd": ["p50_ms", "p95_ms"],
        "polling": ["requests_per_s", "tool"],
    }[fig]
    parts = []
    for k in [*keys, "server_cpu_s", "database_cpu_s", "total_cpu_us_per_event",
              "events_per_commit"]:  # fmt: skip
        v = r.get(k)
        parts.append(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}")
    return " ".join(parts)


async def main_async(args: argparse.Namespace) -> int:
    sizes = Sizes.quick() if args.quick else Sizes()
    figures = expand(args.only)
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for s in servers:
        if s not in SERVERS:
            raise SystemExit(f"unknown server {s!r}; choose from {SERVERS}")
    results_dir = BENCH_DIR / "results"
    logs_dir = results_dir / "logs"
    logs_dir.mkdir(parents=True, exist_ok=True)
    command = shlex.join([os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT)) else sys.executable,
                          os.path.relpath(__file__, ROOT), *sys.argv[1:]])  # fmt: skip
    nofile = raise_nofile()
    admin_url = None
    if args.db == "postgres":
        admin_url = os.environ.get("OUTLAST_BENCH_DATABASE_URL", DEFAULT_PG_ADMIN)
    print(f"command: {command}")
    print(f"figures: {', '.join(figures)}; servers: {', '.join(servers)}; "
          f"{'quick' if args.quick else 'full'} sizes; open files limit {nofile}", flush=True)  # fmt: skip
    results: dict[str, Any] = {}
    for fig in figures:
        results[fig] = {}
        for kind in servers:
            print(f"  {fig:<12} {kind:<9} ...", end=" ", flush=True)
            busy_before = await wait_quiet(args.wait_quiet) if args.wait_quiet else None
            r = await run_figure(fig, kind, sizes, logs_dir, admin_url)
            if busy_before is not None:
                r["busy_cores_before"] = round(busy_before, 2)
            results[fig][kind] = r
            noise = ""
            if r["other_cpu_cores"] >= 0.1:
                noise = f"  [noisy: other processes used {r['other_cpu_cores']:.2f} cores]"
            print(f"{summary_line(fig, kind, r)}  ({r['seconds']:.1f} s){noise}", flush=True)
            await asyncio.sleep(0.5)
    rows = checks(results, sizes, args.db)
    print()
    print_table(rows)
    for fig, sides in results.items():
        for kind, r in sides.items():
            if "error" in r:
                print(f"\n{fig} / {kind} ERROR: {r['error']}")
                tail = r.get("server_log_tail")
                if tail:
                    print("  server log (tail):\n    " + tail.replace("\n", "\n    "))
            for note in r.get("problems", []) + r.get("failures", []):
                print(f"{fig} / {kind}: {note}")
    report = {
        "command": command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git": git_state(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "open_files_limit": nofile,
        },
        "sizes": asdict(sizes),
        "quick": args.quick,
        "db": args.db,
        "servers": {
            kind: shlex.join(
                server_command(
                    kind,
                    0,
                    Path("TMPDIR"),
                    "postgresql://…/FRESH" if args.db == "postgres" else None,
                )
            )
            for kind in servers
        },
        "results": results,
        "checks": rows,
    }
    out = Path(args.json) if args.json else results_dir / "latest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    print(
        f"\nresults: {os.path.relpath(out, ROOT)}; server logs: {os.path.relpath(logs_dir, ROOT)}/"
    )
    print(f"command: {command}")
    failed = [r for r in rows if r["pass"] is False]
    return 1 if failed else 0


def expand(only: str | None) -> list[str]:
    if not only:
        return list(FIGURES)
    chosen: list[str] = []
    for name in only.split(","):
        name = name.strip()
        names = ["concurrency", "memory"] if name == "concurrency" else [name]
        for n in names:
            if n not in FIGURES:
                raise SystemExit(f"unknown figure {n!r}; choose from {FIGURES}")
            if n not in chosen:
                chosen.append(n)
    return [f for f in FIGURES if f in chosen]


def run_main(coro: Coroutine[Any, Any, int]) -> NoReturn:
    """Run a benchmark's main coroutine on uvloop when it is installed, and exit with its code."""
    try:
        import uvloop

        code = uvloop.run(coro)
    except ImportError:
        code = asyncio.run(coro)
    sys.exit(code)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Benchmark outlast against a bare in-memory baseline (see the module docstring).",
    )
    parser.add_argument("--only", help=f"comma-separated figures: {', '.join(FIGURES)} "
                        "(concurrency includes memory)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke test")
    parser.add_argument("--servers", default="baseline,outlast",
                        help="which servers to measure (default baseline,outlast)")  # fmt: skip
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="before each measurement, wait up to SECONDS for the machine to be "
                        "idle (other processes under 0.2 cores); default 0 (don't wait)")  # fmt: skip
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite",
                        help="outlast's store: SQLite in a temporary directory (default), or a "
                        "fresh PostgreSQL database per figure, created with "
                        "OUTLAST_BENCH_DATABASE_URL (default " + DEFAULT_PG_ADMIN + ")")  # fmt: skip
    parser.add_argument("--profile", action="store_true",
                        help="run outlast under cProfile (slower: its CPU figures are not "
                        "comparable); bench/results/profiles/FIGURE-outlast.prof, read with "
                        "python -m pstats")  # fmt: skip
    parser.add_argument(
        "--json", help="where to write the results (default bench/results/latest.json)"
    )
    args = parser.parse_args()
    if args.profile:
        global PROFILE_DIR
        PROFILE_DIR = BENCH_DIR / "results" / "profiles"
        PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    run_main(main_async(args))


if __name__ == "__main__":
    main()
