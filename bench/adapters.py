"""Benchmark: the overhead of each agent adapter, as events per second through outlast.

Run it from the repository root::

    .venv/bin/python bench/adapters.py                 # 5,000 deltas, median of 3 runs each
    .venv/bin/python bench/adapters.py --deltas 2000 --runs 1

A fake model server (``tests/support/fake_model.py``, its own process on a loopback port)
answers every request with the same text: N chunks of 16 bytes, streamed as fast as it can. Each
adapter hosts a framework agent pointed at it (the agents of ``tests/support/adapter_agents.py``;
the upstream model agent for ``upstream-*``) in a fresh ``outlast serve`` process. The client starts one
background streamed response (prompt "go"), reads its events to the terminal one, and checks
that the text is the N chunks; events per second are counted from sending the POST to the
terminal event.

The reference is the plain async generator agent producing the same text
(``outlast.agents.synthetic:agent`` with ``deltas=N size=16``): the ratio is adapter / plain.
It includes the framework's own work and the model stream's. To tell them apart, the model stream
is also read directly with the ``openai`` SDK, without outlast (chunks per second; one chunk
becomes about one event): the ceiling any adapter built on that SDK can reach here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests" / "support"
sys.path.insert(0, str(TESTS))

from serverproc import ServerProcess, free_port  # noqa: E402

CHUNK = "abcdefghijklmno "

ADAPTERS: dict[str, tuple[str, dict[str, str]]] = {
    "plain async generator": ("outlast.agents.synthetic:agent", {}),
    "openai-agents (responses)": ("adapter_agents:openai_agent", {}),
    "openai-agents (chat)": ("adapter_agents:openai_agent_chat", {}),
    "agent-framework (chat)": ("adapter_agents:af_agent", {}),
    "agent-framework (responses)": ("adapter_agents:af_agent_responses", {}),
    "langgraph (chat)": ("adapter_agents:graph", {}),
    "upstream-chat": ("outlast.agents:upstream", {"OUTLAST_UPSTREAM_API": "chat"}),
    "upstream-responses": ("outlast.agents:upstream", {"OUTLAST_UPSTREAM_API": "responses"}),
}


def one_run(server: ServerProcess, prompt: str, deltas: int) -> float:
    """Events per second of one background streamed response, checked."""
    body = {"model": "fake-model", "input": prompt, "background": True, "stream": True}
    events = 0
    text: list[str] = []
    terminal = None
    with httpx.Client(timeout=120) as http:
        start = time.perf_counter()
        with http.stream("POST", f"{server.base_url}/responses", json=body) as response:
            for line in response.iter_lines():
                if not line.startswith("data:") or line == "data: [DONE]":
                    continue
                event = orjson.loads(line[5:])
                events += 1
                if event["type"] == "response.output_text.delta":
                    text.append(event["delta"])
                if event["type"] in ("response.completed", "response.failed"):
                    terminal = event["type"]
        elapsed = time.perf_counter() - start
    assert terminal == "response.completed", terminal
    assert "".join(text) == CHUNK * deltas, "the text is not the model's"
    return events / elapsed


async def _direct(base_url: str, api: str, deltas: int) -> float:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=base_url, api_key="fake-key")
    chunks = 0
    start = time.perf_counter()
    if api == "chat":
        messages: list[dict[str, str]] = [{"role": "user", "content": "go"}]
        stream: object = await client.chat.completions.create(
            model="fake-model",
            messages=messages,  # type: ignore[arg-type]
            stream=True,
        )
    else:
        stream = await client.responses.create(model="fake-model", input="go", stream=True)
    async for _ in stream:  # type: ignore[attr-defined]
        chunks += 1
    elapsed = time.perf_counter() - start
    await client.close()
    assert chunks >= deltas
    return chunks / elapsed


def direct_rate(base_url: str, api: str, deltas: int, runs: int) -> float:
    """Chunks per second of the model stream read with the openai SDK alone (median)."""
    asyncio.run(_direct(base_url, api, deltas))  # warm-up
    return statistics.median(asyncio.run(_direct(base_url, api, deltas)) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deltas", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    port = free_port()
    fake = subprocess.Popen(
        [sys.executable, str(TESTS / "fake_model.py"), "--port", str(port), "--deltas",
         str(args.deltas)]
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}/v1"
    results: dict[str, float] = {}
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.post(f"{base_url}/chat/completions", json={}, timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        direct = {
            api: direct_rate(base_url, api, args.deltas, args.runs) for api in ("chat", "responses")
        }
        with tempfile.TemporaryDirectory() as tmp:
            for name, (target, env) in ADAPTERS.items():
                env = {
                    "FAKE_MODEL_URL": base_url,
                    "OUTLAST_UPSTREAM_BASE_URL": base_url,
                    "OUTLAST_UPSTREAM_API_KEY": "fake-key",
                    **env,
                }
                db = Path(tmp) / f"{len(results)}.db"
                server = ServerProcess(db, agent=target, env=env).start()
                prompt = f"deltas={args.deltas} size=16" if "synthetic" in target else "go"
                try:
                    one_run(server, prompt, args.deltas)  # warm-up
                    rates = [one_run(server, prompt, args.deltas) for _ in range(args.runs)]
                finally:
                    server.stop()
                results[name] = statistics.median(rates)
                print(f"{name:30} {results[name]:10,.0f} events/s", flush=True)
    finally:
        fake.terminate()
        fake.wait()

    plain = results["plain async generator"]
    print(f"\n{args.deltas} deltas of 16 bytes, median of {args.runs} runs, {os.cpu_count()} cores")
    print(f"{'agent':30} {'events/s':>10} {'ratio':>7}")
    for name, rate in results.items():
        print(f"{name:30} {rate:10,.0f} {rate / plain:7.2f}")
    print("\nthe model stream alone, read with the openai SDK (no outlast):")
    for api, rate in direct.items():
        print(f"{'  ' + api + ' chunks':30} {rate:10,.0f} {rate / plain:7.2f}")


if __name__ == "__main__":
    main()
