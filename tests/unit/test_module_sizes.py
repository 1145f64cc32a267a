"""Module sizes: no module in ``src/outlast`` grows past about 500 lines without saying why.

A module over :data:`LIMIT` lines must give its reason in its own docstring, in a sentence that
names its length (one containing the word "lines", e.g. "It is longer than most modules (about
500 lines) on purpose: it is one state machine …"), so that a module which outgrows its seams
fails here instead of growing silently. A module that is being split right now may stand in
:data:`BEING_SPLIT` meanwhile; an entry whose module is back under the limit fails too, so that
the list cannot outlive the work it waits for.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import outlast

PACKAGE = Path(outlast.__file__).parent
# "About 500 lines" (issue 11), with the slack of a docstring or a few lines of growth.
LIMIT = 520

# Modules over the limit whose split is in progress (issue 11), by path under src/outlast.
# Remove each entry once its split has landed; the test says when one is no longer needed.
BEING_SPLIT: dict[str, str] = {}

_GIVES_ITS_LENGTH = re.compile(r"\blines\b")


def line_count(path: Path) -> int:
    """The module's length as ``wc -l`` counts it."""
    return len(path.read_text().splitlines())


def states_its_length(path: Path) -> bool:
    """Whether the module's docstring has a sentence about how many lines it has and why."""
    docstring = ast.get_docstring(ast.parse(path.read_text(), str(path))) or ""
    return bool(_GIVES_ITS_LENGTH.search(docstring))


def unexplained(root: Path, limit: int = LIMIT) -> dict[str, int]:
    """The modules under ``root`` over ``limit`` lines whose docstring does not say why, by
    path relative to ``root``, with their lengths."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        lines = line_count(path)
        if lines > limit and not states_its_length(path):
            found[path.relative_to(root).as_posix()] = lines
    return found


def test_every_long_module_states_why_in_its_docstring() -> None:
    offending = {
        name: lines for name, lines in unexplained(PACKAGE).items() if name not in BEING_SPLIT
    }
    assert offending == {}, (
        f"over {LIMIT} lines with no reason in the module docstring: split the module along a "
        "seam, or say in its docstring why it is one module of that many lines"
    )


@pytest.mark.parametrize("name", sorted(BEING_SPLIT))
def test_a_module_waiting_for_its_split_is_still_over_the_limit(name: str) -> None:
    path = PACKAGE / name
    assert path.is_file(), f"{name} is gone: remove it from BEING_SPLIT"
    assert line_count(path) > LIMIT, f"{name} is split: remove it from BEING_SPLIT"
    assert not states_its_length(path), f"{name} states its reason: remove it from BEING_SPLIT"


def test_a_long_module_without_a_reason_is_found_and_one_with_a_reason_is_not(
    tmp_path: Path,
) -> None:
    body = "x = 1\n" * LIMIT
    (tmp_path / "short.py").write_text('"""Short."""\n' + "x = 1\n" * (LIMIT - 1))
    (tmp_path / "long.py").write_text('"""Long, for no stated reason."""\n' + body)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "machine.py").write_text(
        '"""One state machine.\n\nIt is about 600 lines on purpose: its states move together."""\n'
        + body
    )
    (tmp_path / "pkg" / "comment.py").write_text("# 600 lines, on purpose\n" + body)
    assert unexplained(tmp_path) == {"long.py": LIMIT + 1, "pkg/comment.py": LIMIT + 1}
