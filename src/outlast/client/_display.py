"""How the CLI shows a streaming run: rich on a terminal, plain text when piped.

On a terminal the text streams above a status line (spinner, state, elapsed time, events) that
``rich`` keeps at the bottom. The line still being written is part of that live area (a live
display can only print whole lines above itself) and moves up once it is complete or full.
Piped, stdout gets the text alone and notes go to stderr, so ``outlast run … > file`` holds
exactly what the agent wrote. With ``--json`` stdout gets each event as one line of JSON.
Either way the run's final line (how it ended, how long it took, how many events) goes to stderr.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Protocol

from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

if TYPE_CHECKING:
    from openai.types.responses import ResponseStreamEvent


class Display(Protocol):
    """Where a followed run's output goes."""

    def text(self, delta: str) -> None:
        """A piece of the run's message text."""

    def aside(self, line: str) -> None:
        """A tool call, a tool's output, a reasoning summary: shown only on a terminal."""

    def note(self, line: str) -> None:
        """A message about the stream itself (e.g. a reconnect): on stderr when piped."""

    def status(self, state: str, events: int) -> None:
        """The run's state and how many events have been read."""

    def pause(self) -> None:
        """Stop live output (before asking a question, or at the end)."""

    def set_label(self, label: str) -> None:
        """What the status line calls the run (its id, once known)."""

    def event(self, event: ResponseStreamEvent) -> None:
        """Every event, before it is shown as text or an aside."""

    def final(self, line: str, *, ok: bool) -> None:
        """The last line, once the run has ended: how it ended, how long, how many events."""


class PlainDisplay:
    """Text to stdout as it arrives, notes to stderr, nothing else."""

    def __init__(self, out: IO[str] | None = None, err: IO[str] | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.last = "\n"

    def text(self, delta: str) -> None:
        if delta:
            self.out.write(delta)
            self.out.flush()
            self.last = delta[-1]

    def aside(self, line: str) -> None:
        pass

    def note(self, line: str) -> None:
        # Never on stdout, not even a line break: piped, it holds the agent's text exactly.
        print(line, file=self.err, flush=True)

    def status(self, state: str, events: int) -> None:
        pass

    def set_label(self, label: str) -> None:
        pass

    def event(self, event: ResponseStreamEvent) -> None:
        pass

    def final(self, line: str, *, ok: bool) -> None:
        print(line, file=self.err, flush=True)

    def pause(self) -> None:
        # End the text with a newline, as a shell user expects of a command's output.
        if self.last != "\n":
            self.out.write("\n")
            self.out.flush()
            self.last = "\n"


class JsonLinesDisplay(PlainDisplay):
    """``--json``: each event as one line of JSON on stdout (as the server sent it), notes and
    the final line on stderr; the text is not written out a second time."""

    def text(self, delta: str) -> None:
        pass

    def event(self, event: ResponseStreamEvent) -> None:
        self.out.write(event.to_json(indent=None) + "\n")
        self.out.flush()


class RichDisplay:
    """Streamed text above a live status line, on a terminal.

    Every write to the terminal holds one lock, the status line's refreshes included: they are
    made by a ticker thread of this class's own, not by ``rich``'s auto-refresh, whose thread
    takes only the live display's lock while it works out where the cursor is, not while it
    writes. A line printed from the main thread at the same moment then lands at the end of the
    status line instead of in its place.
    """

    REFRESH = 1 / 8
    """Seconds between two redraws of the status line (its spinner and elapsed time)."""

    def __init__(self, console: Console, label: str) -> None:
        self.console = console
        self.label = label
        self.partial = ""
        self.state = "connecting"
        self.events = 0
        self.started = time.monotonic()
        self.spinner = Spinner("dots", style="cyan")
        self.live: Live | None = None
        self.lock = threading.RLock()
        self._ticking: threading.Event | None = None

    def _start(self) -> Live:
        if self.live is None:
            self.live = Live(
                self,
                console=self.console,
                auto_refresh=False,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self.live.start(refresh=True)
            stop = self._ticking = threading.Event()
            threading.Thread(target=self._tick, args=(self.live, stop), daemon=True).start()
        return self.live

    def _tick(self, live: Live, stop: threading.Event) -> None:
        while not stop.wait(self.REFRESH):
            with self.lock:
                if not stop.is_set():
                    live.refresh()

    def __rich__(self) -> RenderableType:
        elapsed = time.monotonic() - self.started
        line = f"{self.state} · {elapsed:.1f}s · {self.events} events · {self.label}"
        self.spinner.update(text=Text(line, style="dim"))
        if self.partial:
            return Group(Text(self.partial), self.spinner)
        return self.spinner

    def text(self, delta: str) -> None:
        with self.lock:
            live = self._start()
            partial = self.partial + delta
            if "\n" in partial:
                *complete, partial = partial.split("\n")
                for line in complete:
                    live.console.print(Text(line))
            width = self.console.width
            if cell_len(partial) > width:
                # A long line without a newline: move its full-width rows up, keep the last
                # one live.
                rows = Text(partial).wrap(self.console, width)
                for row in rows[:-1]:
                    live.console.print(row)
                partial = rows[-1].plain if len(rows) else ""
            self.partial = partial
            live.refresh()

    def _flush_partial(self) -> None:
        if self.partial:
            self.console.print(Text(self.partial))
            self.partial = ""

    def _line(self, line: str, style: str) -> None:
        with self.lock:
            live = self._start()
            self._flush_partial()
            live.console.print(Text(line, style=style))

    def aside(self, line: str) -> None:
        self._line(line, "dim")

    def note(self, line: str) -> None:
        self._line(line, "yellow")

    def status(self, state: str, events: int) -> None:
        # Called with "connecting" before the first request: the status line shows at once
        # that something is going on, however long the server takes to answer.
        with self.lock:
            self.state, self.events = state, events
            self._start()

    def set_label(self, label: str) -> None:
        self.label = label

    def event(self, event: ResponseStreamEvent) -> None:
        pass

    def final(self, line: str, *, ok: bool) -> None:
        self.pause()
        Console(stderr=True, highlight=False).print(
            Text(line, style="green" if ok else "red"), soft_wrap=True
        )

    def pause(self) -> None:
        with self.lock:
            if self._ticking is not None:
                self._ticking.set()
                self._ticking = None
            if self.live is not None:
                self.live.stop()
                self.live = None
            self._flush_partial()


def print_listing(console: Console, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """``outlast ls`` on a terminal: no column is ever cut, wrapped or dropped (an id must be
    copied whole) except the last one (the text), which gives way with an ellipsis. On a
    terminal too narrow even for the others, the terminal wraps the lines.

    Laid out here rather than with ``rich.table.Table``, which drops whole columns and cuts
    ids when the terminal is narrow.
    """
    gap = "  "
    widths = [
        max([cell_len(header), *(cell_len(row[i]) for row in rows)])
        for i, header in enumerate(headers[:-1])
    ]
    room = console.width - sum(widths) - len(gap) * len(widths)
    colours = {"completed": "green", "failed": "red", "cancelled": "yellow"}

    def line(cells: Sequence[str], styles: Sequence[str]) -> Text:
        text = Text(no_wrap=True, overflow="ignore")
        for cell, width, style in zip(cells[:-1], widths, styles, strict=False):
            text.append(cell.ljust(width), style=style)
            text.append(gap)
        last = Text(cells[-1], style=styles[-1])
        if room > 1 and cell_len(cells[-1]) > room:
            last.truncate(room, overflow="ellipsis")
        text.append_text(last)
        return text

    bold = ["bold"] * len(headers)
    console.print(line(headers, bold), soft_wrap=True)
    for row in rows:
        styles = ["", colours.get(row[1], "cyan"), *[""] * (len(row) - 2)]
        console.print(line(row, styles), soft_wrap=True)


def display_for(label: str) -> Display:
    """Rich on a terminal (stdout and stderr both ttys), plain otherwise."""
    if sys.stdout.isatty() and sys.stderr.isatty():
        return RichDisplay(Console(highlight=False), label)
    return PlainDisplay()
