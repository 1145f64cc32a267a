"""Benchmark: idle memory and start-up time, outlast against the bare baseline, side by side.

Run it from the repository root::

    .venv/bin/python bench/startup.py               # 5 starts per side (~30 s)
    .venv/bin/python bench/startup.py --repeat 3    # fewer
    .venv/bin/python bench/startup.py --wait-quiet 60   # on a shared machine: wait for idle CPU

Each side is started ``--repeat`` times, fresh, as its own subprocess on a free loopback port
(the baseline and outlast alternate, so that noise from a shared machine falls on both alike):

- baseline: ``python bench/baseline.py --port P`` (bench/run.py's bare Starlette/uvicorn app);
- outlast: ``python -m outlast serve --port P --db sqlite:///TMPDIR/outlast.db``, the default
  configuration (the demo agent, metrics on, A2A served when the extra is installed), with no
  ``OUTLAST_*`` or ``OTEL_*`` variable set.

The figures (medians over the starts; PASS/FAIL is printed for each target):

1. time to healthy: from starting the process to its first ``GET /healthz`` answered 200 (polled
   every 5 ms on a new connection). Target: outlast <= 0.5 s.
2. idle RSS: VmRSS from /proc one second after it is healthy, before any request but the health
   checks. Target: outlast <= 60 MB.
3. ``outlast ls``: the wall time of ``python -m outlast ls --url …`` until it exits, against the
   outlast server holding 5 finished runs (its table printed: checked). The baseline is the same
   listing done by a bare ``python -c`` with the standard library's ``http.client`` (one GET of
   the list, no input items). Target: outlast <= 0.3 s.
4. import time: the wall time of a ``python -c`` importing the server (``outlast.cli`` and
   ``outlast.server``; for the baseline, ``bench/baseline.py`` as a module), and the number of
   modules it loads. No target.

Each duration is also given as CPU time (the server's until healthy, the command's own), which a
busy machine does not stretch as it does wall time.

Ratios are outlast / baseline. Results go to ``bench/results/startup.json`` (gitignored), the
servers' logs to ``bench/results/logs/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import run as core  # noqa: E402

SIDES = ("baseline", "outlast")
LISTED_RUNS = 5
TARGETS = {"healthy_s": 0.5, "idle_rss_mb": 60.0, "ls_s": 0.3}

# The baseline's `outlast ls`: the same page, fetched and printed by the standard library.
BARE_LS = """
import http.client, json, sys
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=60)
conn.request("GET", "/v1/responses?limit=20&order=desc", headers={"Authorization": "Bearer none"})
for r in json.loads(conn.getresponse().read())["data"]:
    print(r["id"], r["status"], r["model"], sep="\\t")
"""
IMPORTS = {
    "baseline": f"import sys; sys.path.insert(0, {str(BENCH_DIR)!r}); import baseline; "
    "print(len(sys.modules))",
    "outlast": "import sys, outlast.cli, outlast.server; print(len(sys.modules))",
}


def clean_env() -> dict[str, str]:
    """The default configuration: no OUTLAST_* option, no OTEL_* variable."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("OUTLAST_", "OTEL_"))}


def command(side: str, port: int, tmpdir: Path) -> list[str]:
    if side == "baseline":
        return core.server_command("baseline", port, tmpdir)
    return [sys.executable, "-m", "outlast", "serve", "--port", str(port),
            "--db", f"sqlite:///{tmpdir}/outlast.db"]  # fmt: skip


def healthy(port: int) -> bool:
    try:
        with socket.create_connection((core.HOST, port), timeout=0.5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return sock.recv(4096).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


class Started:
    """One server process, started and timed to its first healthy answer."""

    def __init__(self, side: str, logs: Path, number: int) -> None:
        self.side = side
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f"outlast-bench-startup-{side}-"))
        self.port = core.free_port()
        self.cmd = command(side, self.port, self.tmpdir)
        self.log_path = logs / f"startup-{side}-{number}.log"
        with open(self.log_path, "wb") as log:
            self.t0 = time.perf_counter()
            self.proc = subprocess.Popen(
                self.cmd, cwd=core.ROOT, env=clean_env(), stdout=log, stderr=subprocess.STDOUT
            )
        deadline = self.t0 + 30
        while not healthy(self.port):
            if self.proc.poll() is not None or time.perf_counter() > deadline:
                self.stop()
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise core.FigureError(f"{side} did not become healthy:\n{tail}")
            time.sleep(0.005)
        self.healthy_s = time.perf_counter() - self.t0
        self.healthy_cpu_s = core.read_cpu_s(self.proc.pid) or 0.0

    def rss_mb(self) -> float:
        kb = core.read_rss_kb(self.proc.pid)
        if kb is None:
            raise core.FigureError(f"{self.side} exited")
        return kb / 1024

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        core.shutil.rmtree(self.tmpdir, ignore_errors=True)


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str]) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Run ``cmd``: its wall time, its CPU time (robust to a busy machine) and its result."""
    cpu0, t0 = children_cpu_s(), time.perf_counter()
    done = subprocess.run(cmd, cwd=core.ROOT, env=clean_env(), capture_output=True, text=True)
    return time.perf_counter() - t0, children_cpu_s() - cpu0, done


async def finished_runs(port: int, count: int) -> None:
    # The default agent is the demo agent: one short step.
    body = json.dumps({"model": "demo", "input": "steps=1 delay=0 a run to list",
                       "background": True, "stream": True}).encode()  # fmt: skip
    for _ in range(count):
        check, _, _ = await core.wait_for(core.stream_run(port, body), 60, "a run to list")
        problems = check.problems(None)
        if problems:
            raise core.FigureError("; ".join(problems))


def ls_once(side: str, port: int) -> tuple[float, float]:
    if side == "outlast":
        cmd = [sys.executable, "-m", "outlast", "ls", "--url", f"http://{core.HOST}:{port}"]
    else:
        cmd = [sys.executable, "-c", BARE_LS, str(port)]
    seconds, cpu, done = timed(cmd)
    rows = done.stdout.splitlines()[1 if side == "outlast" else 0 :]
    if done.returncode != 0 or len(rows) < LISTED_RUNS:
        raise core.FigureError(
            f"{side} ls: exit {done.returncode}, {done.stdout!r} {done.stderr!r}"
        )
    return seconds, cpu


def measure(side: str, logs: Path, repeat: int, outlast_port: int) -> dict[str, Any]:
    samples: dict[str, list[float]] = {key: [] for key, _, _ in ROWS}
    for number in range(repeat):
        server = Started(side, logs, number)
        try:
            samples["healthy_s"].append(server.healthy_s)
            samples["healthy_cpu_s"].append(server.healthy_cpu_s)
            time.sleep(1.0)
            samples["idle_rss_mb"].append(server.rss_mb())
        finally:
            server.stop()
        # The listing always asks the one outlast server holding the runs.
        seconds, cpu = ls_once(side, outlast_port)
        samples["ls_s"].append(seconds)
        samples["ls_cpu_s"].append(cpu)
        seconds, cpu, done = timed([sys.executable, "-c", IMPORTS[side]])
        if done.returncode != 0:
            raise core.FigureError(f"{side} import: {done.stderr}")
        samples["import_s"].append(seconds)
        samples["import_cpu_s"].append(cpu)
        samples["modules"].append(int(done.stdout.split()[-1]))
    result: dict[str, Any] = {key: statistics.median(values) for key, values in samples.items()}
    result["samples"] = samples
    result["server_command"] = shlex.join(command(side, 0, Path("TMPDIR")))
    return result


ROWS = [
    # key, label, unit. The CPU rows are the same durations as CPU time, which a busy machine
    # does not stretch (on an idle one, wall time is about CPU time plus a few ms).
    ("healthy_s", "time to healthy (/healthz 200 after exec)", "s"),
    ("healthy_cpu_s", "  server CPU until healthy", "s"),
    ("idle_rss_mb", "idle RSS after start", "MB"),
    ("ls_s", f"`outlast ls` of {LISTED_RUNS} runs, wall (baseline: http.client)", "s"),
    ("ls_cpu_s", "  its CPU", "s"),
    ("import_s", "import of the server modules, wall", "s"),
    ("import_cpu_s", "  its CPU", "s"),
    ("modules", "  modules loaded by that import", "modules"),
]


def rows(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for key, label, unit in ROWS:
        b = results.get("baseline", {}).get(key)
        o = results.get("outlast", {}).get(key)
        ratio = o / b if isinstance(o, int | float) and isinstance(b, int | float) and b else None
        target = TARGETS.get(key)
        ok = None if target is None or o is None else o <= target
        errors = {s: r["error"] for s, r in results.items() if "error" in r}
        out.append({"figure": key, "label": label, "key": key, "unit": unit, "baseline": b,
                    "outlast": o, "ratio": ratio, "pass": ok, "errors": errors,
                    "target": f"<= {target:g} {unit}" if target is not None else ""})  # fmt: skip
    return out


async def main_async(args: argparse.Namespace) -> int:
    logs = BENCH_DIR / "results" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    cmd = shlex.join(["python", os.path.relpath(__file__, core.ROOT), *sys.argv[1:]])
    print(f"command: {cmd}; {args.repeat} starts per side", flush=True)
    if args.wait_quiet:
        await core.wait_quiet(args.wait_quiet)
    busy0, own0, t0 = core.system_busy_s(), core.own_cpu_s(), time.perf_counter()
    # One outlast server, holding a few finished runs, for both sides' listings.
    lister = Started("outlast", logs, -1)
    results: dict[str, dict[str, Any]] = {}
    try:
        await finished_runs(lister.port, LISTED_RUNS)
        for side in SIDES:
            try:
                results[side] = await asyncio.to_thread(
                    measure, side, logs, args.repeat, lister.port
                )
            except core.FigureError as exc:
                results[side] = {"error": str(exc)}
            r = results[side]
            print(f"  {side:<9} " + (f"ERROR: {r['error']}" if "error" in r else
                  " ".join(f"{k}={r[k]:.3g}" for k, _, _ in ROWS)), flush=True)  # fmt: skip
    finally:
        lister.stop()
    elapsed = time.perf_counter() - t0
    other = max(0.0, (core.system_busy_s() - busy0) - (core.own_cpu_s() - own0))
    table = rows(results)
    print()
    core.print_table(table)
    noise = other / elapsed if elapsed else 0.0
    if noise >= 0.1:
        print(f"[noisy: other processes used {noise:.2f} cores on average]")
    report = {
        "command": cmd,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git": core.git_state(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
        "repeat": args.repeat,
        "other_cpu_cores": round(noise, 2),
        "results": results,
        "checks": table,
    }
    out = Path(args.json) if args.json else BENCH_DIR / "results" / "startup.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"results: {os.path.relpath(out, core.ROOT)}")
    return 1 if any(r["pass"] is False for r in table) else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Idle memory and start-up time (see the docstring)."
    )
    parser.add_argument("--repeat", type=int, default=5, help="starts per side (default 5)")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to SECONDS for the machine to be idle")  # fmt: skip
    parser.add_argument(
        "--json", help="where to write the results (default bench/results/startup.json)"
    )
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
