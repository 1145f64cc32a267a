"""The CLI's status line on a terminal, while lines are printed above it.

The status line is redrawn several times a second by a thread while the main thread prints the
run's output above it; the two never interleave, so every printed line is in its place and the
status line is gone at the end. (They did interleave, under load: a line printed while the
status line was being redrawn landed at the end of the status line.) The screen is what
``pyte``, a terminal emulator, makes of the bytes written.
"""

from __future__ import annotations

import pyte
import pytest
from rich.console import Console

from outlast.client._display import RichDisplay

COLUMNS, LINES = 100, 400


class Screen:
    """A file-like terminal: what is written is drawn on a ``pyte`` screen."""

    def __init__(self) -> None:
        self.screen = pyte.Screen(COLUMNS, LINES)
        self.stream = pyte.Stream(self.screen)

    def write(self, text: str) -> int:
        self.stream.feed(text.replace("\n", "\r\n"))  # as a terminal's line discipline does
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display if line.strip()]


def test_lines_printed_while_the_status_line_redraws_stay_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(RichDisplay, "REFRESH", 0.0001)  # redrawn all the time
    screen = Screen()
    console = Console(file=screen, force_terminal=True, width=COLUMNS, height=LINES)  # type: ignore[arg-type]
    display = RichDisplay(console, "resp_" + "0" * 48)
    display.status("in_progress", 0)
    printed = []
    for i in range(300):
        display.status("in_progress", i)
        if i % 3 == 0:
            printed.append(f"→ tool call {i}")
            display.aside(printed[-1])
        else:
            printed.append(f"line {i}")
            display.text(printed[-1] + "\n")
    display.pause()
    assert screen.lines() == printed[-LINES:]
