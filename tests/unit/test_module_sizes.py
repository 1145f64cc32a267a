"""Module sizes: no module in ``src/outlast`` grows past about 500 lines without saying why.

A module over :data:`LIMIT` lines must give its reason in its own docstring, in a sentence that
names its length (one containing the word "lines", e.g. "It is longer than most modules (about
500 lines) on purpose: it is one state machine …"), so that a module which outgrows its seams
fails here instead of growing silently.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import outlast

PACKAGE = Path(outlast.__file__).parent
# "About 500 lines" (issue 11), with the slack of a docstring or a few lines of growth.
LIMIT = 520

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
    assert unexplained(PACKAGE) == {}, (
        f"over {LIMIT} lines with no reason in the module docstring: split the module along a "
        "seam, or say in its docstring why it is one module of that many lines"
    )


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
