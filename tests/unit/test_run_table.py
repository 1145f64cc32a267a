"""The table of runs here: which runs this replica executes, sleeps, or is starting or ending.

A run "handled" here is one the replica holds in the store and is busy with outside the table of
running runs (claimed and being loaded, being ended from its log). The orphan reconciliation
leaves those alone, so the marks must hold for as long as any block needs them.
"""

from __future__ import annotations

from outlast.engine.run import RunTable


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
