"""Benchmark: many long, mostly idle runs on one server process, and what each costs in memory.

Run it from the repository root::

    .venv/bin/python bench/many_runs.py                          # 10,000 runs, a delta every 2 s, 60 s
    .venv/bin/python bench/many_runs.py --runs 2000 --duration 20
    .venv/bin/python bench/many_runs.py --runs 2000 --trace      # where the server's memory goes

One ``outlast serve`` process (SQLite, ``synchronous=FULL``; ``--agent
outlast.agents.synthetic:agent``, whose prompt ``deltas=N delay=S`` yields N text deltas S seconds
apart) gets K background streaming runs (``"background": true, "stream": true``), each read to
its end on a connection of its own: issue 16's "10,000 concurrent long runs (one delta every
2 s, 60 s each) on one server process, every event exactly once, at most 40 KB per in-flight
run".

The load generator holds every stream in this one process on raw asyncio sockets: each
connection is an :class:`asyncio.Protocol` with a few slots (no task, no stream reader, no HTTP
library), which decodes the chunked body and the SSE ``data:`` lines itself and checks them as
they come: sequence numbers 0, 1, 2, ... with no gap and no repeat, the expected number of
deltas, and a terminal ``response.completed``. The POSTs go out at most ``--ramp`` at a time (a
connection counts until its response head arrives), so creating K runs is a ramp of a few
seconds, not K simultaneous connects.

The runs are spread over ``--keys`` API keys (a key may hold ``--max-streams-per-key``, 5,000 by
default, streams open at once), and the server is given ``--max-running``, ``--max-queued`` and
``--max-connections`` above K. File descriptors: this process raises its RLIMIT_NOFILE to the
hard limit before it starts the server, which inherits it; K must stay below it (each side holds
one socket per stream).

Figures: the server's RSS (VmRSS) idle (after a warm-up run, before the load), on the plateau
(the median of the samples while all K streams are open), and at its peak (sampled every 0.1 s);
the KB per in-flight run, ``(peak - idle) / K`` (and the plateau's); the server's CPU seconds
over the load, and per event delivered. ``--trace`` starts the server under ``tracemalloc``
(through a small wrapper, ``SIGUSR1`` writes a snapshot) and prints the allocation sites that
grew most between idle and the plateau: tracemalloc slows the server down and its own memory
inflates the RSS, so the RSS figures of a traced run are not the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import itertools
import os
import pickle
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

from rawhttp import ChunkedDecoder  # noqa: E402
from run import HOST, free_port, raise_nofile  # noqa: E402

loads = orjson.loads

# The server under tracemalloc: a SIGUSR1 writes a snapshot to $OUTLAST_BENCH_SNAPSHOTS/N.pickle.
TRACED_SERVE = """
import os, pickle, signal, sys, tracemalloc
tracemalloc.start(int(os.environ.get("OUTLAST_BENCH_FRAMES", "8")))
count = [0]
def dump(signum, frame):
    count[0] += 1
    snapshot = tracemalloc.take_snapshot()
    path = os.path.join(os.environ["OUTLAST_BENCH_SNAPSHOTS"], f"{count[0]}.pickle")
    with open(path + ".tmp", "wb") as f:
        pickle.dump(snapshot, f)
    os.replace(path + ".tmp", path)
signal.signal(signal.SIGUSR1, dump)
sys.argv = ["outlast", *sys.argv[1:]]
from outlast.cli import main
main()
"""


# -- the server ----------------------------------------------------------------------------------


def read_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def read_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RSSSampler(threading.Thread):
    """VmRSS of one process every ``interval`` s, each sample kept with its time."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, int, int]] = []  # (when, RSS KB, runs in flight)
        self.in_flight: Any = lambda: 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            with contextlib.suppress(OSError, RuntimeError):
                self.samples.append((time.monotonic(), read_rss_kb(self.pid), self.in_flight()))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def between(self, start: float, end: float) -> list[int]:
        return [rss for at, rss, _ in self.samples if start <= at <= end]


class Server:
    """One ``outlast serve`` on SQLite in a temporary directory."""

    def __init__(self, args: argparse.Namespace, keys: list[str], tmp: Path) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.snapshots = tmp / "snapshots"
        headroom = args.runs + 1000
        serve = [
            "serve",
            "--port", str(self.port),
            "--db", f"sqlite:///{tmp}/many.db",
            "--agent", "outlast.agents.synthetic:agent",
            "--max-running", str(headroom),
            "--max-queued", str(headroom),
            "--max-connections", str(headroom),
            "--log-level", args.log_level,
            *(arg for key in keys for arg in ("--api-key", key)),
            *args.server_arg,
        ]  # fmt: skip
        if args.trace:
            self.snapshots.mkdir()
            self.cmd = [sys.executable, "-c", TRACED_SERVE, *serve]
        else:
            self.cmd = [sys.executable, "-m", "outlast", *serve]
        self.log_path = tmp / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> None:
        env = {k: v for k, v in os.environ.items() if k != "OUTLAST_API_KEYS"}
        env["OUTLAST_BENCH_SNAPSHOTS"] = str(self.snapshots)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited at start-up:\n{self.log_tail()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5) as sock:
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if sock.recv(4096).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise SystemExit(f"the server did not become healthy:\n{self.log_tail()}")

    def snapshot(self, number: int, timeout: float = 120.0) -> tracemalloc.Snapshot:
        """Ask the traced server for its ``number``-th snapshot and load it."""
        os.kill(self.pid, signal.SIGUSR1)
        path = self.snapshots / f"{number}.pickle"
        deadline = time.monotonic() + timeout
        while not path.exists():
            if time.monotonic() > deadline:
                raise SystemExit("the traced server wrote no snapshot")
            time.sleep(0.1)
        with open(path, "rb") as f:
            snapshot: tracemalloc.Snapshot = pickle.load(f)
        return snapshot

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- the load generator --------------------------------------------------------------------------


class Load:
    """What every stream reports to: the counts, and when each phase was reached."""

    def __init__(self, runs: int, deltas: int) -> None:
        self.runs = runs
        self.deltas = deltas
        self.open = 0  # response heads received
        self.heads_pending = 0
        self.done = 0
        self.exact = 0
        self.events = 0
        self.failures: list[str] = []
        self.all_open_at = 0.0
        self.first_end_at = 0.0
        self.finished = asyncio.get_running_loop().create_future()
        self.room = asyncio.Event()
        self.room.set()

    def opened(self) -> None:
        self.open += 1
        if self.open == self.runs:
            self.all_open_at = time.monotonic()

    def ended(self, problem: str | None, events: int) -> None:
        self.done += 1
        self.events += events
        if not self.first_end_at:
            self.first_end_at = time.monotonic()
        if problem is None:
            self.exact += 1
        else:
            self.failures.append(problem)
        if self.done == self.runs and not self.finished.done():
            self.finished.set_result(None)


class Stream(asyncio.Protocol):
    """One POST and its event stream, checked as it arrives (see the module's docstring)."""

    __slots__ = ("buf", "decoder", "deltas", "ended", "events", "expect", "head", "last",
                 "load", "pending", "ramp", "request", "transport")  # fmt: skip

    def __init__(self, load: Load, request: bytes, ramp: asyncio.Semaphore) -> None:
        self.load = load
        self.request = request
        self.ramp = ramp
        self.transport: asyncio.Transport | None = None
        self.head = True  # still reading the response head
        self.buf = b""  # the response head so far
        self.decoder = ChunkedDecoder()
        self.pending = b""  # decoded bytes not yet a whole line
        self.expect = 0
        self.deltas = 0
        self.events = 0
        self.last = b""
        self.ended = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not asyncio.Transport subclasses)
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self.head:
            buf = self.buf + data if self.buf else data
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            status = buf[9:12]
            self.head = False
            self.buf = b""
            self.ramp.release()
            if status != b"200":
                self.fail(f"POST answered {status.decode()}: {buf[end + 4 : end + 300]!r}")
                return
            self.load.opened()
            data = buf[end + 4 :]
        # Chunked transfer encoding, decoded into whole lines of the SSE body.
        payload = self.decoder.feed(data)
        if payload:
            self.lines(payload)
        if self.decoder.done:  # the body's end
            self.finish()

    def lines(self, payload: bytes) -> None:
        text = self.pending + payload if self.pending else payload
        lines = text.split(b"\n")
        self.pending = lines.pop()
        for line in lines:
            if line[:6] != b"data: " or line == b"data: [DONE]":
                continue
            event = loads(line[6:])
            seq = event.get("sequence_number")
            if seq != self.expect:
                self.fail(f"expected sequence number {self.expect}, got {seq}")
                return
            self.expect += 1
            self.events += 1
            kind = event["type"]
            if kind == "response.output_text.delta":
                self.deltas += 1
            self.last = kind.encode()

    def finish(self) -> None:
        if self.ended:
            return
        problem = None
        if self.deltas != self.load.deltas:
            problem = f"{self.deltas} deltas, expected {self.load.deltas}"
        elif self.last != b"response.completed":
            problem = f"the last event was {self.last.decode() or 'none'}"
        self.ended = True
        self.load.ended(problem, self.events)
        if self.transport is not None:
            self.transport.close()

    def fail(self, problem: str) -> None:
        if not self.ended:
            self.ended = True
            self.load.ended(problem, self.events)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.head:
            self.ramp.release()
        if not self.ended:
            self.fail(f"the connection was lost after {self.events} events ({exc})")


def post(body: bytes, key: str, port: int) -> bytes:
    return (
        f"POST /v1/responses HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def generate(args: argparse.Namespace, keys: list[str], port: int, load: Load) -> None:
    """Open every stream, at most ``--ramp`` waiting for their heads at once."""
    loop = asyncio.get_running_loop()
    body = orjson.dumps(
        {
            "model": "synthetic",
            "input": f"deltas={load.deltas} size={args.size} delay={args.interval}",
            "background": True,
            "stream": True,
        }
    )
    requests = [post(body, key, port) for key in keys]
    ramp = asyncio.Semaphore(args.ramp)
    for i in range(args.runs):
        await ramp.acquire()
        request = requests[i % len(keys)]
        try:
            await loop.create_connection(functools.partial(Stream, load, request, ramp), HOST, port)
        except OSError as exc:
            ramp.release()
            load.ended(f"connect failed: {exc}", 0)


async def warm_up(port: int, key: str) -> None:
    """One short run, so that every code path of the server is loaded before the idle RSS."""
    loop = asyncio.get_running_loop()
    load = Load(1, 2)
    body = orjson.dumps(
        {"model": "synthetic", "input": "deltas=2 delay=0.01", "background": True, "stream": True}
    )
    request = post(body, key, port)
    await loop.create_connection(lambda: Stream(load, request, asyncio.Semaphore(1)), HOST, port)
    await asyncio.wait_for(load.finished, 30)
    if load.failures:
        raise SystemExit(f"the warm-up run failed: {load.failures[0]}")


def _short(filename: str) -> str:
    return filename.split("site-packages/")[-1].split("src/")[-1].split("python3.11/")[-1]


def report_trace(before: tracemalloc.Snapshot, at: tracemalloc.Snapshot, runs: int) -> None:
    """The allocation sites that grew most between the two snapshots, per run."""
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<*")]
    before, at = before.filter_traces(ignore), at.filter_traces(ignore)
    total = sum(s.size for s in at.statistics("filename")) - sum(
        s.size for s in before.statistics("filename")
    )
    print(f"\nPython memory (tracemalloc) grew by {total / 1e6:.1f} MB with {runs} runs in "
          f"flight: {total / runs / 1024:.1f} KB per run")  # fmt: skip
    print("  by file (KB per run):")
    by_file = at.compare_to(before, "filename")
    print_grown(((_short(st.traceback[0].filename), st.size_diff, st.count_diff) for st in by_file),
                runs, 20)  # fmt: skip
    print("  by line (KB per run):")
    by_line = at.compare_to(before, "lineno")
    print_grown(((f"{_short(st.traceback[0].filename)}:{st.traceback[0].lineno}", st.size_diff,
                  st.count_diff) for st in by_line), runs, 30)  # fmt: skip
    print("  by the innermost outlast frame that allocated (KB per run; the rest: the library):")
    grown = _by_outlast_frame(at)
    for key, (was, blocks) in _by_outlast_frame(before).items():
        now, now_blocks = grown.get(key, (0, 0))
        grown[key] = now - was, now_blocks - blocks
    largest = sorted(grown.items(), key=lambda kv: -kv[1][0])
    print_grown(((key, size, count) for key, (size, count) in largest), runs, 30)
    print("  of which under outlast/engine/ (KB per run):")
    engine = [(k, v) for k, v in largest if k.startswith("outlast/engine/")]
    print_grown(((key, size, count) for key, (size, count) in engine), runs, 25)
    total_engine = sum(size for _, (size, _) in engine)
    print(f"    {total_engine / runs / 1024:6.2f}  in all")


def print_grown(sites: Iterable[tuple[str, int, int]], runs: int, limit: int) -> None:
    """The first ``limit`` of ``(site, bytes, blocks)``, largest first, that grew: per run."""
    for site, size, count in itertools.islice(sites, limit):
        if size <= 0:
            break
        print(f"    {size / runs / 1024:6.2f}  {count / runs:6.1f} blocks  {site}")


def _by_outlast_frame(snapshot: tracemalloc.Snapshot) -> dict[str, tuple[int, int]]:
    """Bytes and blocks per allocating line of outlast: the innermost frame in ``outlast/`` (and
    its caller in outlast), and the library line it called (or the library line alone when no
    outlast frame is there)."""
    totals: dict[str, tuple[int, int]] = {}
    for trace in snapshot.traces:
        frames = list(trace.traceback)  # oldest first
        inner = frames[-1]
        key = f"{_short(inner.filename)}:{inner.lineno}"
        ours = [frame for frame in reversed(frames) if "/outlast/" in frame.filename]
        if ours:
            here = f"{_short(ours[0].filename)}:{ours[0].lineno}"
            key = here if ours[0] is inner else f"{here} -> {key}"
            if len(ours) > 1:  # and where that was called from, in outlast
                key = f"{_short(ours[1].filename)}:{ours[1].lineno} -> {key}"
        size, count = totals.get(key, (0, 0))
        totals[key] = size + trace.size, count + 1
    return totals


async def measure(args: argparse.Namespace) -> int:
    nofile = raise_nofile()
    if args.runs + 200 > nofile:
        raise SystemExit(f"RLIMIT_NOFILE is {nofile}: too low for {args.runs} streams")
    deltas = max(1, round(args.duration / args.interval))
    keys = [f"sk-many-{i}" for i in range(args.keys)]
    with tempfile.TemporaryDirectory(prefix="outlast-many-") as tmp:
        server = Server(args, keys, Path(tmp))
        server.start()
        try:
            await warm_up(server.port, keys[0])
            await asyncio.sleep(1.0)
            idle = statistics.median([read_rss_kb(server.pid) for _ in range(5)])
            before = server.snapshot(1) if args.trace else None
            load = Load(args.runs, deltas)
            sampler = RSSSampler(server.pid)
            sampler.in_flight = lambda: load.open - load.done
            sampler.start()
            cpu0 = read_cpu_s(server.pid)
            started = time.monotonic()
            await generate(args, keys, server.port, load)
            at = None
            traced_runs = args.runs
            if args.trace:
                while not load.all_open_at and not load.failures:
                    await asyncio.sleep(0.1)
                traced_runs = load.open - load.done
                at = server.snapshot(2)
            limit = args.duration * 3 + args.runs / 100 + 60
            try:
                await asyncio.wait_for(asyncio.shield(load.finished), limit)
            except TimeoutError:
                print(f"timed out after {limit:.0f} s: {load.done} of {args.runs} streams ended")
            ended = time.monotonic()
            cpu = read_cpu_s(server.pid) - cpu0
            sampler.stop()
            peak = max(rss for _, rss, _ in sampler.samples)
            most = max(flying for _, _, flying in sampler.samples)
            plateau_samples = sampler.between(load.all_open_at or ended, load.first_end_at or ended)
            plateau = statistics.median(plateau_samples) if plateau_samples else float("nan")
            after = read_rss_kb(server.pid)
        finally:
            server.stop()
        errors = [line for line in server.log_path.read_text(errors="replace").splitlines()
                  if " ERROR " in line or "Traceback" in line]  # fmt: skip
    print(f"{args.runs} background streaming runs, {deltas} deltas of {args.size} bytes each, "
          f"{args.interval:g} s apart ({args.duration:g} s), over {args.keys} keys, one server "
          f"process on SQLite")  # fmt: skip
    all_open = load.all_open_at - started if load.all_open_at else float("nan")
    print(f"  all {args.runs} streams open {all_open:.1f} s after the first POST; "
          f"the last ended {ended - started:.1f} s after it")  # fmt: skip
    print(f"  streams with every event exactly once: {load.exact} of {args.runs}"
          f"  ({load.events:,} events)")  # fmt: skip
    for problem in load.failures[:5]:
        print(f"    {problem}")
    if len(load.failures) > 5:
        print(f"    ... and {len(load.failures) - 5} more")
    print(f"  server RSS: idle {idle / 1024:.1f} MB, plateau {plateau / 1024:.1f} MB, "
          f"peak {peak / 1024:.1f} MB, after {after / 1024:.1f} MB")  # fmt: skip
    print(f"  runs in flight at once: at most {most}")
    print(f"  per in-flight run: {(peak - idle) / most:.1f} KB ((peak - idle) / {most}); "
          f"{(plateau - idle) / args.runs:.1f} KB on the plateau (target <= 40 KB)")  # fmt: skip
    per_event = cpu / load.events * 1e6 if load.events else float("nan")
    print(f"  server CPU: {cpu:.1f} s ({per_event:.0f} us per event delivered)")
    if errors:
        print(f"  the server logged {len(errors)} errors, the first: {errors[0]}")
    if before is not None and at is not None:
        report_trace(before, at, traced_runs)
    return 0 if load.exact == args.runs else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="runs at once (K)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between deltas")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds each run lasts")
    parser.add_argument("--size", type=int, default=16, help="bytes of each delta")
    parser.add_argument("--keys", type=int, default=4, help="API keys the runs are spread over")
    parser.add_argument("--ramp", type=int, default=200, help="POSTs awaiting their head at once")
    parser.add_argument("--log-level", default="info", help="the server's --log-level")
    parser.add_argument("--trace", action="store_true", help="tracemalloc in the server")
    parser.add_argument("--server-arg", action="append", default=[],
                        help="one more argument for outlast serve (repeatable)")  # fmt: skip
    args = parser.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    sys.exit(asyncio.run(measure(args)))


if __name__ == "__main__":
    main()
