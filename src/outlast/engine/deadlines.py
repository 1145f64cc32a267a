"""``--run-timeout`` for every run executing here, on one timer.

A timer per run costs a handle, its arguments and the loop's heap entry (about half a kilobyte
with uvloop) for every one of ten thousand runs that will almost never time out. Runs all get the
same timeout, counted from when each starts, so their deadlines come in the order they started:
:class:`Deadlines` keeps the executing runs in that order (a dict, insertion-ordered) and one
timer for the earliest deadline. When it fires, the runs past their deadline are stopped from the
front, and it is set again for the next one. Should the timeout change while runs execute (only
tests do that), a deadline may come before an earlier run's: the timer is moved up for it, and
the next firing looks at every run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from outlast.config import Settings
from outlast.engine.run import Run, StopReason


class Deadlines:
    """The deadlines of the executing runs, and the one timer that stops them."""

    def __init__(self, settings: Settings, stop: Callable[[Run, StopReason], Any]) -> None:
        self.settings = settings
        self._stop = stop
        # Executing runs and their deadlines (loop time), in the order they started.
        self._runs: dict[Run, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._last = 0.0  # the latest deadline given so far
        self._ordered = True  # every deadline is at or after the ones before it

    def watch(self, run: Run) -> None:
        """The run starts now: stop it (:attr:`StopReason.TIMEOUT`) once ``--run-timeout`` passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.run_timeout
        self._runs[run] = deadline
        if deadline < self._last:
            self._ordered = False
        else:
            self._last = deadline
        timer = self._timer
        if timer is None or deadline < timer.when():
            if timer is not None:
                timer.cancel()
            self._timer = loop.call_at(deadline, self._expire)

    def forget(self, run: Run) -> None:
        """The run has ended (the timer, if set for it, finds nothing due and moves on)."""
        self._runs.pop(run, None)
        if not self._runs and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        # The loop runs a timer up to its clock's resolution early: what is due by then is due.
        now = loop.time() + 0.001
        runs = self._runs
        if self._ordered:
            due = []
            for run, deadline in runs.items():
                if deadline > now:
                    break
                due.append(run)
        else:
            due = [run for run, deadline in runs.items() if deadline <= now]
        for run in due:
            del runs[run]
        if not runs:
            self._ordered = True
        else:
            deadlines = runs.values()
            upcoming = next(iter(deadlines)) if self._ordered else min(deadlines)
            self._timer = loop.call_at(upcoming, self._expire)
        for run in due:
            self._stop(run, StopReason.TIMEOUT)
