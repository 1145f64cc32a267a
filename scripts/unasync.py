"""Generate the synchronous client (``client/_sync.py``) from the asynchronous one (``_async.py``).

As encode/httpcore does: ``_async.py`` is the only source, and ``_sync.py`` is what a fixed list of
token replacements makes of it (``async def`` → ``def``, ``await x`` → ``x``, ``AsyncStream`` →
``Stream``, ``__aenter__`` → ``__enter__``, ``asyncio.sleep`` → ``time.sleep``, …), formatted by
ruff. Edit ``_async.py`` and run ``python scripts/unasync.py``; ``--check`` (in ``make lint``)
exits non-zero when the committed ``_sync.py`` is not what the source generates.
"""

from __future__ import annotations

import argparse
import difflib
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "src" / "outlast" / "client"
PAIRS = [(CLIENT / "_async.py", CLIENT / "_sync.py")]

HEADER = (
    "# Generated from _async.py by scripts/unasync.py: do not edit. Change _async.py and run\n"
    "# `python scripts/unasync.py` (`make lint` checks that this file is up to date).\n"
)

# Applied in order, each a regular expression over the whole file. The specific ones come first:
# where the two APIs differ by more than a prefix (openai's paginators, generator arity, the
# docstrings that say how to iterate), the sync text is spelled out.
SUBS: list[tuple[str, str]] = [
    # asyncio is only imported to sleep; the sync client sleeps with time, imported anyway.
    (r"^import asyncio\n", ""),
    (r"\basyncio\.sleep\b", "time.sleep"),
    # The sync client's list is one page that fetches the next ones as it is iterated.
    (r"^from openai\._base_client import AsyncPaginator\n", ""),
    (r"AsyncPaginator\[Response, AsyncCursorPage\[Response\]\]", "SyncCursorPage[Response]"),
    (r"\bAsyncCursorPage\b", "SyncCursorPage"),
    (
        r"``await`` it for one page; ``async for`` over it fetches the following pages as needed\.",
        "Iterating the page fetches the following pages as needed.",
    ),
    (r"\bAsyncGenerator\[(.+?), None\]", r"Generator[\1, None, None]"),
    (r"\bawait (self\._\w+)\.__anext__\(\)", r"next(\1)"),
    (r"\basynchronous\b", "synchronous"),
    (r"SDK's async client", "SDK's client"),
    (r"\bAsync([A-Z]\w*)", r"\1"),
    (r"\basync def\b", "def"),
    (r"\basync with\b", "with"),
    (r"\basync for\b", "for"),
    (r"\bawait ", ""),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\b__aiter__\b", "__iter__"),
    (r"\b__anext__\b", "__next__"),
    (r"\baclose\b", "close"),
]
COMPILED = [(re.compile(pattern, re.MULTILINE), repl) for pattern, repl in SUBS]


def unasync(source: str) -> str:
    """The synchronous version of ``source``, before formatting."""
    for pattern, repl in COMPILED:
        source = pattern.sub(repl, source)
    return HEADER + source


def ruff_format(source: str, path: Path) -> str:
    """``source`` formatted as ``ruff format`` would format ``path`` (lines rejoined, …)."""
    beside = Path(sys.executable).parent / "ruff"
    ruff = str(beside) if beside.exists() else shutil.which("ruff")
    if ruff is None:
        raise SystemExit("unasync: ruff is needed to format the generated file")
    done = subprocess.run(
        [ruff, "format", "--stdin-filename", str(path), "-"],
        input=source,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"unasync: ruff format failed on {path.name}: {done.stderr.strip()}")
    return done.stdout


def generate(source_path: Path, target_path: Path) -> str:
    """The text ``target_path`` should hold."""
    return ruff_format(unasync(source_path.read_text()), target_path)


def main(argv: list[str] | None = None, pairs: list[tuple[Path, Path]] = PAIRS) -> int:
    """Write (or with ``--check``, compare) each generated file; the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if a generated file is out of date"
    )
    args = parser.parse_args(argv)
    stale = 0
    for source_path, target_path in pairs:
        expected = generate(source_path, target_path)
        actual = target_path.read_text() if target_path.exists() else ""
        if expected == actual:
            continue
        rel = target_path.relative_to(ROOT) if target_path.is_relative_to(ROOT) else target_path
        if args.check:
            stale += 1
            diff = difflib.unified_diff(
                actual.splitlines(keepends=True),
                expected.splitlines(keepends=True),
                f"{rel} (committed)",
                f"{rel} (generated)",
            )
            sys.stdout.writelines(diff)
            print(f"unasync: {rel} is out of date; run: python scripts/unasync.py")
        else:
            target_path.write_text(expected)
            print(f"unasync: wrote {rel}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
