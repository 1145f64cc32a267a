"""The table of runs here: which runs this replica executes, sleeps, or is starting or ending.

A run "handled" here is one the replica holds in the store and is busy with outside the table of
running runs (claimed and being loaded, being ended from its log). The orphan reconciliation
leaves those alone, so the marks must hold for as long as any block needs them.

A run's end (:class:`~outlast.engine.run.Done`) is awaited by the callers waiting for the run, and
set exactly once, when it has ended.
"""

from __future__ import annotations

import asyncio
import contextlib

from outlast.engine.run import Done, RunTable


def test_a_run_is_local_only_while_it_is_handled() -> None:
    runs = RunTable()
    assert not runs.is_local("resp_1")
    with runs.handling(["resp_1"]):
        assert runs.is_local("resp_1")
    assert not runs.is_local("resp_1")


def test_nested_marks_keep_a_run_handled_until_the_outermost_block_ends() -> None:
    # A claimed batch is marked as a whole, then each run again while it is loaded: the run
    # loaded first must stay marked while the batch's later runs are started.
    runs = RunTable()
    with runs.handling(["resp_1", "resp_2"]):
        with runs.handling(["resp_1"]):
            assert runs.is_local("resp_1")
        assert runs.is_local("resp_1")
        assert runs.is_local("resp_2")
    assert not runs.is_local("resp_1")
    assert not runs.is_local("resp_2")


def test_a_mark_is_released_when_its_block_raises() -> None:
    runs = RunTable()
    try:
        with runs.handling(["resp_1"]):
            raise RuntimeError("loading failed")
    except RuntimeError:
        pass
    assert not runs.is_local("resp_1")


async def test_a_runs_end_wakes_every_waiter_and_a_cancelled_waiter_is_forgotten() -> None:
    done = Done()
    assert not done.is_set()
    waiters = [asyncio.create_task(done.wait()) for _ in range(3)]
    gone = asyncio.create_task(done.wait())
    await asyncio.sleep(0)
    gone.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await gone
    done.set()
    assert await asyncio.gather(*waiters) == [True, True, True]
    assert done.is_set()
    assert await done.wait() is True  # once set, a wait returns at once
    done.set()  # and setting it again changes nothing
    assert done.is_set()
