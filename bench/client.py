"""Benchmark: the client library's auto-resume (``outlast.client``) through a connection-cutting proxy.

Run it from the repository root::

    .venv/bin/python bench/client.py                  # both figures, full sizes (~1 minute)
    .venv/bin/python bench/client.py --quick          # smaller sizes, a smoke test
    .venv/bin/python bench/client.py --only faults    # one figure (comma-separate several)
    .venv/bin/python bench/client.py --client async   # AsyncOutlastClient / AsyncOpenAI instead
    .venv/bin/python bench/client.py --seed 7         # another sequence of cuts

Each figure starts its own ``python -m outlast serve --port P --db sqlite:///TMPDIR/bench.db
--agent outlast.agents.synthetic:agent --max-running 2000 --max-queued 10000`` (``Server`` of
``bench/run.py``) on a free loopback port, warms it up, measures, and stops it (also on errors).
The synthetic agent's prompt ``deltas=N size=16 delay=S`` makes N text deltas of 16 bytes, S
seconds apart (``create_body`` of ``bench/run.py``). The client library is used with its
defaults (reconnect backoff, timeouts): they are printed and written to the results.

The figures:

1. faults: one background+stream run of 5,000 deltas (quick: 1,000), 2 ms apart, streamed with
   ``OutlastClient.stream`` (``--client async``: ``AsyncOutlastClient``) through the loopback
   ``FaultProxy`` of ``tests/support/faultproxy.py``. The proxy cuts every connection after a random
   number of bytes of the server's answer, uniformly 2-60 KB (seeded, ``--seed``), half of them
   with a FIN and half with a TCP reset; the client reconnects by itself
   (``GET /v1/responses/{id}?stream=true&starting_after=N``), dozens of times. A connection that
   resumes after the last delta is let through: the four final events each carry the whole text
   (80 KB at 5,000 deltas), more than the largest cut, so cutting them would never end.
   Reported: the events the client yielded; the reconnects (connections the proxy saw, minus
   one); exactly-once: sequence numbers 0..N gapless with no duplicate, N deltas whose text is
   the agent's, a terminal ``response.completed``, and every event equal to the server's log
   (read afterwards directly, without the proxy); and the resume latency: for each cut, the time
   from the moment the proxy cut the connection (``time.perf_counter`` as it closes the client's
   socket) to the client yielding the first event read on the next connection; p50/p95/max, and
   its two parts (cut -> the client's ``on_reconnect`` hook; hook -> that first event).
   Target: exactly-once holds and p50 < 50 ms.
2. overhead: one background+stream run of 20,000 deltas (quick: 3,000), delay 0, no proxy and
   no faults, read (a) with the plain ``openai`` SDK (``responses.create(..., background=True,
   stream=True)``, iterating the events) and (b) with ``OutlastClient.stream(...)``; events per
   second at the client from the create to the terminal event, and the client's CPU per event
   (median of 3 alternating pairs; quick: 1). Reported as the ratio (b)/(a); no target: it shows
   what the exactly-once bookkeeping costs.

The proxy runs as threads of this process, so with the sync client it shares the GIL with the
reader; that is part of what the latency includes. Results go to ``bench/results/client.json``
and the servers' logs to ``bench/results/logs/client-*.log`` (both gitignored). The exit status
is 1 when a target is missed or a figure fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import shlex
import socket
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import openai
import orjson

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
# for faultproxy (appended: nothing there shadows a package)
sys.path.append(str(ROOT / "tests" / "support"))

from faultproxy import Cut, Fault, FaultProxy, Plan  # noqa: E402
from outlast.client import (  # noqa: E402
    AsyncOutlastClient,
    OutlastClient,
    Reconnecting,
)
from run import (  # noqa: E402
    FIXED_EVENTS,
    HOST,
    FigureError,
    Server,
    StreamCheck,
    create_body,
    own_cpu_s,
    pct,
    raise_nofile,
    system_busy_s,
    wait_for,
    warm_up,
)

FIGURES = ["faults", "overhead"]
DELTA_SIZE = 16
API_KEY = "bench"  # the bench servers run without keys; the SDK insists on one
TERMINAL_TYPES = frozenset({"response.completed", "response.failed", "response.incomplete"})
LATENCY_TARGET_MS = 50.0
_STARTING_AFTER = re.compile(r"[?&]starting_after=(\d+)")


@dataclass
class Sizes:
    faults_deltas: int = 5000
    faults_delay: float = 0.002
    cut_min_bytes: int = 2_000
    cut_max_bytes: int = 60_000
    reset_share: float = 0.5
    overhead_deltas: int = 20_000
    overhead_repeat: int = 3

    @classmethod
    def quick(cls) -> Sizes:
        return cls(faults_deltas=1000, overhead_deltas=3000, overhead_repeat=1)


def expected_text(deltas: int, size: int = DELTA_SIZE) -> str:
    """What ``outlast.agents.synthetic:agent`` writes for ``deltas=N size=B``."""
    return ("abcdefghijklmno " * (size // 16 + 1))[:size] * deltas


def base_url(port: int) -> str:
    return f"http://{HOST}:{port}/v1"


# -- the proxy ---------------------------------------------------------------------------------


class CuttingProxy(FaultProxy):
    """:class:`FaultProxy` that also notes when it cut each connection (``time.perf_counter``).

    The proxy's socket to the client is wrapped so that, once a :class:`Cut`'s budget of bytes
    has been passed, the first ``shutdown``/``close`` the proxy makes on it (a FIN, or a reset
    with ``SO_LINGER`` 0) records the time, just before the cut goes out.
    """

    def __init__(self, upstream_port: int, plan: Plan) -> None:
        super().__init__(upstream_port)
        self._inner_plan = plan
        self.plan = self._planned
        self.fault_of: dict[int, Fault | None] = {}
        """The plan's answer for each connection number."""
        self.cut_at: dict[int, float] = {}
        """When each cut connection was cut."""

    def _planned(self, number: int, request_line: str) -> Fault | None:
        fault = self._inner_plan(number, request_line)
        self.fault_of[number] = fault
        return fault

    def _serve(self, client: socket.socket, number: int) -> None:
        super()._serve(_ClientSide(client, self, number), number)


class _ClientSide(socket.socket):
    """The proxy's end of a client connection: counts the bytes sent, notes the cut."""

    def __init__(self, sock: socket.socket, proxy: CuttingProxy, number: int) -> None:
        family, kind, proto = sock.family, sock.type, sock.proto
        super().__init__(family, kind, proto, fileno=sock.detach())
        self._proxy = proxy
        self._number = number
        self._sent = 0

    def sendall(self, data: Any, flags: int = 0, /) -> None:
        super().sendall(data, flags)
        self._sent += len(data)

    def shutdown(self, how: int, /) -> None:
        self._note_cut()
        super().shutdown(how)

    def close(self) -> None:
        self._note_cut()
        super().close()

    def _note_cut(self) -> None:
        fault = self._proxy.fault_of.get(self._number)
        if (
            isinstance(fault, Cut)
            and self._sent >= fault.after
            and self._number not in self._proxy.cut_at
        ):
            self._proxy.cut_at[self._number] = time.perf_counter()


def cutting_plan(sizes: Sizes, seed: int, last_delta_seq: int) -> Plan:
    """Cut every connection after a random 2-60 KB, FIN or reset, except once past the deltas."""
    rng = random.Random(seed)

    def plan(number: int, request_line: str) -> Fault | None:
        match = _STARTING_AFTER.search(request_line)
        if match is not None and int(match.group(1)) >= last_delta_seq:
            return None  # only the final events are left, each bigger than any cut
        after = rng.randint(sizes.cut_min_bytes, sizes.cut_max_bytes)
        return Cut(after, reset=rng.random() < sizes.reset_share)

    return plan


# -- reading streams ---------------------------------------------------------------------------


@dataclass
class Streamed:
    """What one client read: the events, when each was yielded, after how many reconnects."""

    events: list[Any] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    reconnects_at: list[int] = field(default_factory=list)
    hooks: list[tuple[float, Reconnecting]] = field(default_factory=list)
    reconnects: int = 0
    t0: float = 0.0
    t_end: float = 0.0
    cpu_s: float = 0.0

    @property
    def seconds(self) -> float:
        return self.t_end - self.t0

    def hook(self, limit_s: float, max_reconnects: int) -> Callable[[Reconnecting], None]:
        """An ``on_reconnect`` that records each call, and stops a run that goes nowhere."""

        def on_reconnect(info: Reconnecting) -> None:
            now = time.perf_counter()
            self.hooks.append((now, info))
            if now - self.t0 > limit_s:
                raise FigureError(f"the stream was not done after {limit_s:.0f} s")
            if len(self.hooks) > max_reconnects:
                raise FigureError(f"more than {max_reconnects} reconnects")

        return on_reconnect


def outlast_sync(
    client: OutlastClient, body: dict[str, Any], out: Streamed | None = None
) -> Streamed:
    out = out or Streamed()
    out.t0, cpu0 = time.perf_counter(), time.process_time()
    stream = client.stream(**body)
    try:
        for event in stream:
            out.arrivals.append(time.perf_counter())
            out.reconnects_at.append(stream.reconnects)
            out.events.append(event)
    finally:
        stream.close()
    out.t_end = out.arrivals[-1] if out.arrivals else time.perf_counter()
    out.cpu_s = time.process_time() - cpu0
    out.reconnects = stream.reconnects
    return out


async def outlast_async(
    client: AsyncOutlastClient, body: dict[str, Any], out: Streamed | None = None
) -> Streamed:
    out = out or Streamed()
    out.t0, cpu0 = time.perf_counter(), time.process_time()
    stream = client.stream(**body)
    try:
        async for event in stream:
            out.arrivals.append(time.perf_counter())
            out.reconnects_at.append(stream.reconnects)
            out.events.append(event)
    finally:
        await stream.close()
    out.t_end = out.arrivals[-1] if out.arrivals else time.perf_counter()
    out.cpu_s = time.process_time() - cpu0
    out.reconnects = stream.reconnects
    return out


def openai_sync(sdk: openai.OpenAI, body: dict[str, Any]) -> Streamed:
    out = Streamed()
    out.t0, cpu0 = time.perf_counter(), time.process_time()
    with sdk.responses.create(**body, timeout=120) as stream:
        for event in stream:
            out.arrivals.append(time.perf_counter())
            out.reconnects_at.append(0)
            out.events.append(event)
            if event.type in TERMINAL_TYPES:
                break
    out.t_end = out.arrivals[-1] if out.arrivals else time.perf_counter()
    out.cpu_s = time.process_time() - cpu0
    return out


async def openai_async(sdk: openai.AsyncOpenAI, body: dict[str, Any]) -> Streamed:
    out = Streamed()
    out.t0, cpu0 = time.perf_counter(), time.process_time()
    async with await sdk.responses.create(**body, timeout=120) as stream:
        async for event in stream:
            out.arrivals.append(time.perf_counter())
            out.reconnects_at.append(0)
            out.events.append(event)
            if event.type in TERMINAL_TYPES:
                break
    out.t_end = out.arrivals[-1] if out.arrivals else time.perf_counter()
    out.cpu_s = time.process_time() - cpu0
    return out


def check_events(events: list[Any], deltas: int) -> list[str]:
    """Gapless sequence numbers from 0, no duplicate, the agent's text, ``response.completed``."""
    check = StreamCheck()
    for event in events:
        slim: dict[str, Any] = {"sequence_number": event.sequence_number, "type": event.type}
        if event.type == "response.created":
            slim["response"] = {"id": event.response.id}
        check.add(slim)
    problems = check.problems(deltas)
    if len(events) != deltas + FIXED_EVENTS:
        problems.append(f"{len(events)} events, expected {deltas + FIXED_EVENTS}")
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    if text != expected_text(deltas):
        problems.append(f"the deltas carry {len(text)} characters, not the agent's text")
    last = events[-1] if events else None
    if (
        last is not None
        and last.type == "response.completed"
        and last.response.output_text != expected_text(deltas)
    ):
        problems.append("the completed response's output_text is not the agent's text")
    return problems


def server_log(port: int, response_id: str) -> list[Any]:
    """The response's whole event log, straight from the server (no proxy, no outlast client)."""
    with openai.OpenAI(base_url=base_url(port), api_key=API_KEY, max_retries=0) as direct:
        return list(direct.responses.retrieve(response_id, stream=True, timeout=60))


def first_difference(ours: list[Any], log: list[Any]) -> str | None:
    mine, theirs = [e.to_dict() for e in ours], [e.to_dict() for e in log]
    if mine == theirs:
        return None
    for i, (a, b) in enumerate(zip(mine, theirs, strict=False)):
        if a != b:
            return f"event {i} differs from the server's log ({a.get('type')} / {b.get('type')})"
    return f"{len(mine)} events, the server's log has {len(theirs)}"


# -- figures -----------------------------------------------------------------------------------


def start_server(figure: str, logs: Path) -> Server:
    srv = Server("outlast", f"client-{figure}", logs)
    try:
        srv.start()
        asyncio.run(wait_for(warm_up(srv), 60, "warm-up"))
    except BaseException:
        srv.stop()
        raise
    return srv


def fig_faults(srv: Server, sizes: Sizes, args: argparse.Namespace) -> dict[str, Any]:
    deltas = sizes.faults_deltas
    body = orjson.loads(create_body(deltas, DELTA_SIZE, sizes.faults_delay))
    # Events: created, queued, in_progress, output_item.added, content_part.added (0-4), the
    # deltas (5 .. deltas + 4), then the four events that carry the whole text.
    last_delta_seq = deltas + 4
    limit_s = 60 + deltas * sizes.faults_delay * 10
    out = Streamed()
    hook = out.hook(limit_s, max_reconnects=1000)
    with CuttingProxy(srv.port, cutting_plan(sizes, args.seed, last_delta_seq)) as proxy:
        # The client's defaults (backoff, timeouts), only a hook added to watch the reconnects.
        if args.client == "async":

            async def read() -> None:
                async with AsyncOutlastClient(
                    base_url=proxy.base_url, api_key=API_KEY, on_reconnect=hook
                ) as client:
                    await outlast_async(client, body, out)

            asyncio.run(read())
        else:
            with OutlastClient(
                base_url=proxy.base_url, api_key=API_KEY, on_reconnect=hook
            ) as client:
                outlast_sync(client, body, out)
        connections = proxy.connections
        fault_of, cut_at = dict(proxy.fault_of), dict(proxy.cut_at)

    problems = check_events(out.events, deltas)
    if out.events and out.events[0].type == "response.created":
        difference = first_difference(out.events, server_log(srv.port, out.events[0].response.id))
        if difference:
            problems.append(difference)
    reconnects = connections - 1
    if out.reconnects != reconnects:
        problems.append(
            f"the client counted {out.reconnects} reconnects, the proxy {connections} connections"
        )

    # Reconnect k opens connection k; its first event ends the outage that cut k - 1 began.
    first_on: dict[int, float] = {}
    for t, k in zip(out.arrivals, out.reconnects_at, strict=True):
        first_on.setdefault(k, t)
    cuts: list[dict[str, Any]] = []
    latencies, detect, reopen = [], [], []
    for k in range(1, reconnects + 1):
        fault = fault_of.get(k - 1)
        cut = cut_at.get(k - 1)
        hook_t = out.hooks[k - 1][0] if k - 1 < len(out.hooks) else None
        row: dict[str, Any] = {
            "connection": k - 1,
            "bytes": fault.after if isinstance(fault, Cut) else None,
            "reset": fault.reset if isinstance(fault, Cut) else None,
        }
        if cut is not None and k in first_on:
            row["latency_ms"] = (first_on[k] - cut) * 1000
            latencies.append(row["latency_ms"])
            if hook_t is not None:
                detect.append((hook_t - cut) * 1000)
                reopen.append((first_on[k] - hook_t) * 1000)
        else:
            problems.append(f"connection {k - 1}: no cut time or no event on the next connection")
        if k - 1 < len(out.hooks):
            info = out.hooks[k - 1][1]
            row["client_delay_s"] = info.delay
            row["attempt"] = info.attempt
            row["error"] = type(info.error).__name__ if info.error else None
        cuts.append(row)
    delays = [info.delay for _, info in out.hooks]
    exactly_once = not problems
    p50 = pct(latencies, 0.5)
    return {
        "client": args.client,
        "deltas": deltas,
        "delay_s": sizes.faults_delay,
        "seed": args.seed,
        "cut_bytes": [sizes.cut_min_bytes, sizes.cut_max_bytes],
        "events": len(out.events),
        "expected_events": deltas + FIXED_EVENTS,
        "reconnects": reconnects,
        "client_reconnects": out.reconnects,
        "cuts_fin": sum(1 for c in cuts if c["reset"] is False),
        "cuts_reset": sum(1 for c in cuts if c["reset"] is True),
        "exactly_once": exactly_once,
        "problems": problems[:10],
        "latency_p50_ms": p50,
        "latency_p95_ms": pct(latencies, 0.95),
        "latency_max_ms": max(latencies) if latencies else None,
        "detect_p50_ms": pct(detect, 0.5),
        "reopen_p50_ms": pct(reopen, 0.5),
        "client_delays_s_max": max(delays) if delays else None,
        "client_retries": sum(1 for _, info in out.hooks if info.attempt > 1),
        "seconds": out.seconds,
        "events_per_s": len(out.events) / out.seconds if out.seconds else None,
        "target": f"exactly once and p50 < {LATENCY_TARGET_MS:.0f} ms",
        "pass": exactly_once and p50 < LATENCY_TARGET_MS,
        "cuts": cuts,
    }


def fig_overhead(srv: Server, sizes: Sizes, args: argparse.Namespace) -> dict[str, Any]:
    deltas = sizes.overhead_deltas
    body = orjson.loads(create_body(deltas, DELTA_SIZE, 0))
    small = orjson.loads(create_body(20, DELTA_SIZE, 0))
    url = base_url(srv.port)
    pairs: list[tuple[Streamed, Streamed]] = []
    if args.client == "async":

        async def measure() -> None:
            async with (
                openai.AsyncOpenAI(base_url=url, api_key=API_KEY, max_retries=0) as sdk,
                AsyncOutlastClient(base_url=url, api_key=API_KEY) as client,
            ):
                await openai_async(sdk, small)
                await outlast_async(client, small)
                for _ in range(sizes.overhead_repeat):
                    plain = await openai_async(sdk, body)
                    ours = await outlast_async(client, body)
                    pairs.append((plain, ours))

        asyncio.run(measure())
    else:
        with (
            openai.OpenAI(base_url=url, api_key=API_KEY, max_retries=0) as sdk,
            OutlastClient(base_url=url, api_key=API_KEY) as client,
        ):
            # One warm client each, a small run first (imports, connection pool).
            openai_sync(sdk, small)
            outlast_sync(client, small)
            for _ in range(sizes.overhead_repeat):
                plain = openai_sync(sdk, body)
                ours = outlast_sync(client, body)
                pairs.append((plain, ours))

    problems: list[str] = []
    for plain, ours in pairs:
        problems += [f"openai SDK: {p}" for p in check_events(plain.events, deltas)]
        problems += [f"OutlastClient: {p}" for p in check_events(ours.events, deltas)]
        if ours.reconnects:
            problems.append(f"OutlastClient reconnected {ours.reconnects} times without faults")
    if problems:
        raise FigureError("; ".join(problems[:5]))

    def side(runs: list[Streamed]) -> dict[str, Any]:
        return {
            "events_per_s": statistics.median(len(r.events) / r.seconds for r in runs),
            "client_cpu_us_per_event": statistics.median(
                r.cpu_s / len(r.events) * 1e6 for r in runs
            ),
            "runs_events_per_s": [len(r.events) / r.seconds for r in runs],
        }

    plain_side = side([p for p, _ in pairs])
    ours_side = side([o for _, o in pairs])
    return {
        "client": args.client,
        "deltas": deltas,
        "events": deltas + FIXED_EVENTS,
        "repeat": sizes.overhead_repeat,
        "openai": plain_side,
        "outlast": ours_side,
        "ratio_outlast_over_openai": ours_side["events_per_s"] / plain_side["events_per_s"],
        "cpu_ratio_outlast_over_openai": (
            ours_side["client_cpu_us_per_event"] / plain_side["client_cpu_us_per_event"]
        ),
    }


FIGURE_FUNCS: dict[str, Callable[[Server, Sizes, argparse.Namespace], dict[str, Any]]] = {
    "faults": fig_faults,
    "overhead": fig_overhead,
}


def run_figure(name: str, sizes: Sizes, args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    started = time.perf_counter()
    busy0, own0 = system_busy_s(), own_cpu_s()
    srv: Server | None = None
    try:
        srv = start_server(name, logs)
        result = FIGURE_FUNCS[name](srv, sizes, args)
        if not srv.alive():
            raise FigureError("the server was not running at the end of the figure")
    except FigureError as exc:
        result = {"error": str(exc), "pass": False}
    except Exception as exc:
        result = {
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
            "pass": False,
        }
    finally:
        if srv is not None:
            srv.stop()
    if srv is not None:
        if "error" in result:
            result["server_log_tail"] = srv.log_tail()
        if srv.exit_note:
            result["shutdown"] = srv.exit_note
        result["server_command"] = shlex.join(srv.cmd)
    elapsed = time.perf_counter() - started
    result["figure_seconds"] = round(elapsed, 2)
    # Noise: CPU that neither the bench nor its server used while the figure ran.
    other = max(0.0, (system_busy_s() - busy0) - (own_cpu_s() - own0))
    result["other_cpu_cores"] = round(other / elapsed, 2) if elapsed else 0.0
    return result


# -- output ------------------------------------------------------------------------------------


def client_defaults() -> dict[str, Any]:
    """The client library's defaults, as this bench uses them (nothing is overridden)."""
    probe = OutlastClient(base_url=base_url(1), api_key=API_KEY)
    try:
        return {
            "reconnect_backoff": asdict(probe.reconnect),
            "polling_backoff": asdict(probe.polling),
            "connect_timeout_s": probe.stream_timeout.connect,
            "stream_read_timeout_s": probe.stream_timeout.read,
            "give_up_after_s": probe.give_up_after,
        }
    finally:
        probe.close()


def show(name: str, r: dict[str, Any]) -> None:
    noise = ""
    if r.get("other_cpu_cores", 0) >= 0.1:
        noise = f"  [noisy: other processes used {r['other_cpu_cores']:.2f} cores]"
    if "error" in r:
        print(f"  ERROR: {r['error']}{noise}")
        tail = r.get("server_log_tail")
        if tail:
            print("  server log (tail):\n    " + tail.replace("\n", "\n    "))
        return
    if name == "faults":
        verdict = "PASS" if r["pass"] else "FAIL"
        print(f"  {r['client']} client, {r['deltas']:,} deltas {r['delay_s'] * 1000:g} ms apart, "
              f"cuts {r['cut_bytes'][0] // 1000}-{r['cut_bytes'][1] // 1000} KB, seed {r['seed']}"
              f"  ({r['seconds']:.1f} s){noise}")  # fmt: skip
        print(f"  events received      {r['events']:,} (expected {r['expected_events']:,})")
        print(f"  reconnects           {r['reconnects']} ({r['cuts_fin']} FIN, "
              f"{r['cuts_reset']} RST cuts); the client counted {r['client_reconnects']}")  # fmt: skip
        print(f"  exactly once, order  {'yes' if r['exactly_once'] else 'NO'}")
        for problem in r["problems"]:
            print(f"    - {problem}")
        print(f"  resume latency       p50 {r['latency_p50_ms']:.2f} ms, "
              f"p95 {r['latency_p95_ms']:.2f} ms, max {r['latency_max_ms'] or float('nan'):.2f} ms"
              f"  (cut -> hook p50 {r['detect_p50_ms']:.2f} ms, "
              f"hook -> event p50 {r['reopen_p50_ms']:.2f} ms)")  # fmt: skip
        print(f"  client backoff used  max delay {r['client_delays_s_max']} s, "
              f"{r['client_retries']} retried opens")  # fmt: skip
        print(f"  target: {r['target']}: {verdict}")
    else:
        a, b = r["openai"], r["outlast"]
        print(f"  {r['client']} clients, {r['deltas']:,} deltas, delay 0, "
              f"median of {r['repeat']}{noise}")  # fmt: skip
        print(f"  (a) openai SDK       {a['events_per_s']:>9,.0f} events/s  "
              f"client CPU {a['client_cpu_us_per_event']:.1f} us/event")  # fmt: skip
        print(f"  (b) OutlastClient    {b['events_per_s']:>9,.0f} events/s  "
              f"client CPU {b['client_cpu_us_per_event']:.1f} us/event")  # fmt: skip
        print(f"  ratio (b)/(a)        {r['ratio_outlast_over_openai']:.3f} events/s, "
              f"{r['cpu_ratio_outlast_over_openai']:.3f} CPU per event (no target)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke test")
    parser.add_argument("--only", help=f"comma-separated figures: {', '.join(FIGURES)}")
    parser.add_argument("--client", choices=["sync", "async"], default="sync",
                        help="OutlastClient and OpenAI (sync, default) or their async twins")  # fmt: skip
    parser.add_argument("--seed", type=int, default=1, help="the cuts' random seed (default 1)")
    args = parser.parse_args()
    chosen = [f.strip() for f in args.only.split(",")] if args.only else list(FIGURES)
    for name in chosen:
        if name not in FIGURES:
            raise SystemExit(f"unknown figure {name!r}; choose from {FIGURES}")
    sizes = Sizes.quick() if args.quick else Sizes()
    results_dir = BENCH_DIR / "results"
    logs = results_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    raise_nofile()
    command = shlex.join([os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT)) else sys.executable,
                          os.path.relpath(__file__, ROOT), *sys.argv[1:]])  # fmt: skip
    defaults = client_defaults()
    print(f"command: {command}")
    print(f"client defaults (not overridden): reconnect {defaults['reconnect_backoff']}, "
          f"connect timeout {defaults['connect_timeout_s']} s, stream read timeout "
          f"{defaults['stream_read_timeout_s']} s, give up after {defaults['give_up_after_s']} s",
          flush=True)  # fmt: skip
    results: dict[str, Any] = {}
    for name in chosen:
        print(f"{name}:", flush=True)
        results[name] = run_figure(name, sizes, args, logs)
        show(name, results[name])
    report = {
        "command": command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "openai": openai.__version__,
        },
        "quick": args.quick,
        "sizes": asdict(sizes),
        "client_defaults": defaults,
        "results": results,
    }
    out = results_dir / "client.json"
    out.write_text(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    print(f"results: {os.path.relpath(out, ROOT)}")
    sys.exit(1 if any(r.get("pass") is False for r in results.values()) else 0)


if __name__ == "__main__":
    main()
