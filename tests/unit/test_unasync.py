"""``scripts/unasync.py``: the sync client is generated from the async one, and checked in step."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("unasync", ROOT / "scripts" / "unasync.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["unasync"] = module
    spec.loader.exec_module(module)
    return module


unasync = _load_script()

ASYNC_SOURCE = '''"""The asynchronous thing."""

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

from openai import AsyncOpenAI, AsyncStream


class AsyncThing:
    async def __aenter__(self) -> AsyncThing:
        return self

    def __aiter__(self) -> AsyncIterator[int]:
        return self

    async def __anext__(self) -> int:
        return await self._events.__anext__()

    async def run(self, client: AsyncOpenAI) -> AsyncGenerator[int, None]:
        async with client:
            async for event in await client.stream():
                await asyncio.sleep(1)
                yield event
        await self._events.aclose()
'''


def test_the_committed_sync_client_is_what_the_async_source_generates() -> None:
    assert unasync.main(["--check"]) == 0


def test_the_generated_file_says_it_is_generated_and_how() -> None:
    text = (ROOT / "src" / "outlast" / "client" / "_sync.py").read_text()
    assert text.startswith("# Generated from _async.py by scripts/unasync.py: do not edit.")
    assert "python scripts/unasync.py" in text.splitlines()[1]


def test_async_tokens_become_their_sync_counterparts() -> None:
    sync = unasync.unasync(ASYNC_SOURCE)
    assert '"""The synchronous thing."""' in sync
    assert "import asyncio" not in sync
    assert "from collections.abc import Generator, Iterator" in sync
    assert "from openai import OpenAI, Stream" in sync
    assert "class Thing:" in sync
    assert "def __enter__(self) -> Thing:" in sync
    assert "def __iter__(self) -> Iterator[int]:" in sync
    assert "def __next__(self) -> int:\n        return next(self._events)" in sync
    assert "def run(self, client: OpenAI) -> Generator[int, None, None]:" in sync
    assert "        with client:\n            for event in client.stream():" in sync
    assert "time.sleep(1)" in sync
    assert "self._events.close()" in sync
    body = sync.removeprefix(unasync.HEADER).replace("synchronous", "")
    assert "async" not in body and "await" not in body


def test_check_fails_and_shows_the_difference_when_the_sync_file_is_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, target = tmp_path / "_async.py", tmp_path / "_sync.py"
    source.write_text(ASYNC_SOURCE)
    assert unasync.main([], pairs=[(source, target)]) == 0
    assert unasync.main(["--check"], pairs=[(source, target)]) == 0
    target.write_text(target.read_text().replace("time.sleep(1)", "time.sleep(2)"))
    capsys.readouterr()
    assert unasync.main(["--check"], pairs=[(source, target)]) == 1
    out = capsys.readouterr().out
    assert "-                time.sleep(2)" in out and "+                time.sleep(1)" in out
    assert "out of date" in out
