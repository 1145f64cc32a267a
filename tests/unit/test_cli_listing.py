"""How ``outlast ls`` lays out its table on a terminal: ids whole at any width."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from outlast.client._display import print_listing
from outlast.client.cli import is_prefix

HEADERS = ("ID", "STATUS", "CREATED", "DURATION", "MODEL", "OUTPUT")
ROWS = [
    ("resp_" + "c46fb35e33" * 4 + "01234567", "completed", "2026-12-01 13:00:00", "3s", "default",
     "a long answer of the agent that does not fit in any terminal at all, however wide"),
    ("resp_" + "0a" * 24, "in_progress", "2026-12-01 13:00:01", "2m03s…", "demo", ""),
]  # fmt: skip


def rendered(width: int) -> list[str]:
    out = io.StringIO()
    print_listing(Console(file=out, width=width, force_terminal=False), HEADERS, ROWS)
    return out.getvalue().splitlines()


@pytest.mark.parametrize("width", [40, 80, 120, 200])
def test_every_id_status_and_date_is_shown_whole_at_any_width(width: int) -> None:
    header, *lines = rendered(width)
    assert header.split() == list(HEADERS)
    for line, row in zip(lines, ROWS, strict=True):
        assert line.startswith(row[0] + " ")
        assert all(f" {cell} " in line for cell in row[1:5])


def test_only_the_text_gives_way_with_an_ellipsis_when_the_terminal_is_narrower() -> None:
    first = rendered(120)[1]
    assert len(first) == 120
    assert first.endswith("…")
    assert " a long answ" in first
    assert rendered(200)[1].endswith("however wide")


@pytest.mark.parametrize(
    ("text", "prefix"),
    [("resp_c46f", True), ("c46f", True), ("resp_" + "0" * 48, False), ("resp_", False),
     ("resp_xyz", False), ("msg_c46f", False)],
)  # fmt: skip
def test_a_short_hex_id_is_a_prefix_and_a_whole_or_foreign_one_is_not(
    text: str, prefix: bool
) -> None:
    assert is_prefix(text) is prefix
