"""``outlast run`` in a terminal, driven as a person would: a pseudo-terminal and Ctrl-C.

On a terminal the text streams above a status line (state, elapsed time, events); pressing
Ctrl-C asks whether to cancel the run or leave it running: cancel stops it on the server, leave
prints the command that re-attaches, and that command continues exactly where the terminal
stopped. The screen is rendered with ``pyte`` (a terminal emulator), so the assertions are about
what a person would see.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pyte
import pytest

from databases import TestDatabase, fresh_database
from helpers import wait_until
from serverproc import ServerProcess

COLUMNS, LINES = 100, 40


@pytest.fixture
def database(tmp_path: Path) -> Iterator[TestDatabase]:
    """The commands do not depend on the backend: SQLite is enough here."""
    with fresh_database("sqlite", tmp_path) as db:
        yield db


@pytest.fixture(scope="module")
def module_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDatabase]:
    """The module's shared server is on SQLite too; its tests look only at their own runs."""
    with fresh_database("sqlite", tmp_path_factory.mktemp("sqlite")) as db:
        yield db


class Terminal:
    """A command in a pseudo-terminal, and the screen it draws."""

    def __init__(self, args: list[str], url: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OUTLAST_")}
        env.update(OUTLAST_URL=url, TERM="xterm-256color", COLUMNS=str(COLUMNS), LINES=str(LINES))
        self.screen = pyte.Screen(COLUMNS, LINES)
        self.stream = pyte.Stream(self.screen)
        self.raw = ""
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "outlast", *args],
            env=env,
            dimensions=(LINES, COLUMNS),
            encoding="utf-8",
            timeout=30,
        )

    def expect(self, pattern: str) -> None:
        self.child.expect(pattern)
        self._feed(self.child.before + self.child.after)

    def finish(self) -> int:
        self.child.expect(pexpect.EOF)
        self._feed(self.child.before)
        self.child.close()
        return int(self.child.exitstatus)

    def _feed(self, text: str) -> None:
        self.raw += text
        self.stream.feed(text)

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display).strip()


def count_text(n: int) -> str:
    return "".join(f"{i} " for i in range(n))


def squeezed(text: str) -> str:
    """Text without its whitespace: the terminal wraps long lines wherever its width says."""
    return "".join(text.split())


def status_of(server: ServerProcess, response_id: str) -> str:
    with server.client() as direct:
        return str(direct.responses.retrieve(response_id).status)


def test_run_streams_the_text_above_a_status_line(shared_server: ServerProcess) -> None:
    terminal = Terminal(["run", "--agent-model", "count", "n=150 delay=0.01"], shared_server.url)
    terminal.expect(r"in_progress · [0-9.]+s · \d+ events · resp_\w+")
    assert terminal.finish() == 0
    # The status line is gone at the end; the text is all there, once, then the final line.
    *text, last = terminal.text().splitlines()
    assert "events" not in "".join(text)
    assert squeezed("".join(text)) == squeezed(count_text(150))
    assert re.fullmatch(r"resp_\w{48} completed · [0-9.]+s · \d+ events", last)


def test_the_status_line_says_connecting_until_the_server_answers(
    shared_server: ServerProcess,
) -> None:
    # A server that accepts the connection and says nothing: the client waits for its answer.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        terminal = Terminal(["run", "hello"], url)
        terminal.expect(r"connecting · [0-9.]+s · 0 events")
        # ... and gives up within seconds, saying why.
        assert terminal.finish() == 2
        assert f"cannot reach {url}: no answer within" in terminal.text()


def test_run_shows_tool_calls_and_reasoning_on_a_terminal(shared_server: ServerProcess) -> None:
    terminal = Terminal(["run", "--agent-model", "tools", "weather"], shared_server.url)
    assert terminal.finish() == 0
    *shown, last = terminal.text().splitlines()
    assert re.fullmatch(r"resp_\w{48} completed · [0-9.]+s · \d+ events", last)
    assert shown == [
        "… Looking up the weather first.",
        '→ get_weather({"city":"Paris"})',
        '← {"temperature_c":21}',
        "It is 21 °C in Paris.",
        "",
        "A second message.",
    ]


def interrupt(server: ServerProcess) -> tuple[Terminal, str]:
    """Start a long run in a terminal, press Ctrl-C once text is flowing; the run's id."""
    terminal = Terminal(["run", "--agent-model", "count", "n=400 delay=0.02"], server.url)
    terminal.expect(r"in_progress · [0-9.]+s · \d+ events · (resp_\w+)")
    response_id = terminal.child.match.group(1)
    terminal.expect(r"1\d\d ")  # a hundred numbers in
    terminal.child.sendintr()
    terminal.expect(r"\(l\)")  # the prompt, its default answer last
    assert f"{response_id} is still running" in terminal.text()
    return terminal, response_id


def test_ctrl_c_then_cancel_stops_the_run_on_the_server(shared_server: ServerProcess) -> None:
    terminal, response_id = interrupt(shared_server)
    terminal.child.sendline("c")
    assert terminal.finish() == 130
    assert f"{response_id} cancelled." in terminal.text()
    assert status_of(shared_server, response_id) == "cancelled"


def test_ctrl_c_then_leave_keeps_it_running_and_the_printed_command_reattaches(
    shared_server: ServerProcess,
) -> None:
    terminal, response_id = interrupt(shared_server)
    terminal.child.sendline("l")
    assert terminal.finish() == 130
    assert status_of(shared_server, response_id) == "in_progress"
    match = re.search(r"outlast tail (resp_\w+) --from (\d+)", terminal.text())
    assert match is not None, terminal.text()
    assert match.group(1) == response_id
    first = int(match.group(2))
    # What the terminal showed before Ctrl-C, plus what the printed command shows, is the
    # run's whole text: the command starts at the first event the terminal had not shown.
    shown = terminal.text().split(f"{response_id} is still running")[0]
    reattached = subprocess.run(
        [sys.executable, "-m", "outlast", "tail", response_id, "--from", str(first)],
        capture_output=True,
        text=True,
        env={**os.environ, "OUTLAST_URL": shared_server.url},
        timeout=60,
        check=True,
    )
    assert squeezed(shown) + squeezed(reattached.stdout) == squeezed(count_text(400))
    wait_until(lambda: status_of(shared_server, response_id) == "completed", "the run completed")


def test_tail_in_a_terminal_can_be_interrupted_and_reattached(shared_server: ServerProcess) -> None:
    with shared_server.client() as direct:
        started = direct.responses.create(model="count", input="n=300 delay=0.02", background=True)
    terminal = Terminal(["tail", started.id], shared_server.url)
    terminal.expect(r"1\d\d ")
    terminal.child.sendintr()
    assert terminal.finish() == 130
    # tail never offers to cancel: it only watches.
    assert "[c/l]" not in terminal.raw
    assert re.search(rf"outlast tail {started.id} --from \d+", terminal.text())
    assert status_of(shared_server, started.id) == "in_progress"
