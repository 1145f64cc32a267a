"""The suite's own layout: rules pytest enforces only when a whole run collects every folder.

Test modules are imported by their basename (pytest's default ``prepend`` import mode, with the
folders on ``sys.path``), so two files of one name in two folders collect alone but fail
together with "import file mismatch": the run of a single folder cannot see it, a full run does.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent


def test_no_two_test_modules_share_a_basename() -> None:
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert {name: n for name, n in names.items() if n > 1} == {}
