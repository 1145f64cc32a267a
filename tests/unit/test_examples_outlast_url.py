"""``OUTLAST_URL`` means one thing in every example, as in the ``outlast`` command: the server's
address, with or without ``/v1`` (``http://127.0.0.1:8000`` and ``…/v1`` reach the same API)."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from outlast.client.cli import base_url

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FORMS = ["http://example.test:8000", "http://example.test:8000/", "http://example.test:8000/v1"]


def url_assignments(path: Path) -> list[ast.Assign]:
    tree = ast.parse(path.read_text())
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and "OUTLAST_URL" in ast.unparse(node.value)
    ]


READERS = sorted(p for p in EXAMPLES.glob("*.py") if url_assignments(p))


def test_the_examples_that_read_outlast_url_are_found() -> None:
    assert len(READERS) >= 4


@pytest.mark.parametrize("path", READERS, ids=[p.name for p in READERS])
def test_each_example_reads_outlast_url_the_same_with_or_without_v1(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for assignment in url_assignments(path):
        values = set()
        for form in FORMS:
            monkeypatch.setenv("OUTLAST_URL", form)
            values.add(
                eval(compile(ast.Expression(assignment.value), str(path), "eval"), {"os": os})
            )
        assert len(values) == 1, (path.name, values)
        (value,) = values
        # The server's address, or its API under /v1, as the CLI makes it of the same variable.
        assert value in ("http://example.test:8000", base_url(FORMS[0]))
