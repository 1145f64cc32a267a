"""The order of :class:`outlast.engine.queue.FairQueue`, the queue of runs waiting in one process.

What it promises (the API tests check the same through a server, on both backends):

- keys take turns for free slots, in proportion to their weights, each key's runs by arrival;
- a key that was idle does not get the slots it did not use as credit;
- a key at its running limit is skipped until one of its runs ends;
- a run with a completion window waits behind every urgent run until half its window has
  passed, then goes ahead of the urgent runs that came after it.
"""

from __future__ import annotations

from outlast.agents.base import AgentRequest
from outlast.engine.queue import FairQueue, promote_at
from outlast.engine.run import Run
from outlast.protocol.normalizer import Normalizer
from outlast.protocol.spec import RunSpec, new_response_fields
from outlast.protocol.state import ResponseState


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def run(name: str, owner: str, created_at: float, window: str | None = None) -> Run:
    fields = new_response_fields(name, RunSpec(model="m", input_items=[]), "queued")
    fields["created_at"] = created_at
    params = {"background_options": {"completion_window": window}} if window else {}
    request = AgentRequest(response_id=name, model="m", input=[], params=params)
    return Run(Normalizer(ResponseState(fields)), owner, request, True)


def drain(queue: FairQueue) -> list[str]:
    """Start every run in turn, each ending before the next starts (one slot)."""
    order = []
    while (started := queue.pop()) is not None:
        order.append(started.id)
        queue.ended(started)
    return order


def test_keys_take_turns_in_proportion_to_their_weights() -> None:
    clock = Clock()
    queue = FairQueue(weight=lambda owner: 3 if owner == "heavy" else 1, clock=clock)
    for i in range(6):
        queue.append(run(f"h{i}", "heavy", clock.now))
    for i in range(2):
        queue.append(run(f"l{i}", "light", clock.now))
    assert drain(queue) == ["h0", "l0", "h1", "h2", "h3", "l1", "h4", "h5"]


def test_a_key_back_from_idle_gets_no_credit_for_the_slots_it_did_not_use() -> None:
    clock = Clock()
    queue = FairQueue(clock=clock)
    for i in range(4):
        queue.append(run(f"a{i}", "a", clock.now))
    assert [queue.pop().id for _ in range(3)] == ["a0", "a1", "a2"]  # type: ignore[union-attr]
    queue.append(run("a4", "a", clock.now))
    for i in range(3):
        queue.append(run(f"b{i}", "b", clock.now))
    # b joins at the current virtual time: it starts next, then the keys alternate; it does not
    # get three starts in a row for the three a had alone.
    assert drain(queue) == ["b0", "a3", "b1", "a4", "b2"]


def test_a_key_at_its_running_limit_is_skipped_until_one_of_its_runs_ends() -> None:
    clock = Clock()
    queue = FairQueue(max_running=lambda owner: 1 if owner == "a" else None, clock=clock)
    for name, owner in (("a0", "a"), ("a1", "a"), ("b0", "b"), ("b1", "b")):
        queue.append(run(name, owner, clock.now))
    first = queue.pop()
    assert first is not None and first.id == "a0"
    assert [queue.pop().id for _ in range(2)] == ["b0", "b1"]  # type: ignore[union-attr]
    assert queue.pop() is None and len(queue) == 1  # a1 waits for a0
    queue.ended(first)
    assert drain(queue) == ["a1"]


def test_a_windowed_run_waits_behind_urgent_ones_until_half_its_window_has_passed() -> None:
    clock = Clock()
    queue = FairQueue(clock=clock)
    created = clock.now
    queue.append(run("w", "a", created, window="2h"))
    queue.append(run("s0", "a", created + 1))
    assert promote_at(created, {"background_options": {"completion_window": "2h"}}) == (
        created + 3600
    )
    first = queue.pop()
    assert first is not None and first.id == "s0"
    queue.ended(first)
    clock.now = created + 3599
    queue.append(run("s1", "a", clock.now))
    clock.now = created + 3600  # promoted: ahead of s1, which came after it
    queue.append(run("s2", "a", clock.now))
    assert drain(queue) == ["w", "s1", "s2"]


def test_windowed_runs_of_one_key_take_free_slots_the_earliest_deadline_first() -> None:
    clock = Clock()
    queue = FairQueue(clock=clock)
    queue.append(run("eight", "a", clock.now, window="8h"))
    queue.append(run("two", "a", clock.now + 1, window="2h"))
    queue.append(run("now", "b", clock.now + 2, window="soonest"))
    assert drain(queue) == ["now", "two", "eight"]


def test_a_run_removed_while_waiting_never_starts() -> None:
    clock = Clock()
    queue = FairQueue(clock=clock)
    runs = [run(f"r{i}", "a", clock.now) for i in range(3)]
    for r in runs:
        queue.append(r)
    queue.remove(runs[1])
    assert [r.id for r in queue] == ["r0", "r2"]
    assert drain(queue) == ["r0", "r2"]


def test_many_keys_take_one_turn_each_per_round() -> None:
    clock = Clock()
    queue = FairQueue(clock=clock)
    for i in range(3):
        for key in "abcd":
            queue.append(run(f"{key}{i}", key, clock.now))
    order = drain(queue)
    assert [name[0] for name in order] == list("abcd" * 3)
    assert [name for name in order if name[0] == "c"] == ["c0", "c1", "c2"]
