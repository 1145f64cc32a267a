"""``--key-limit`` as written, and the admission rules of :class:`outlast.engine.shares.Shares`.

- The option names a key (or ``*``) and any of ``running``, ``queued``, ``rate``, ``weight``; a bad
  entry is a one-line error that never shows more than the start of a key.
- A full queue refuses a key only at its fair share; a key's ``queued`` limit is its own; the
  rate is a token bucket whose refusal says when the next create is allowed.
"""

from __future__ import annotations

import argparse

import pytest

from outlast.engine.errors import QueueFull
from outlast.engine.shares import QueueCounts, Shares
from outlast.shares import KeyLimit, parse_key_limit


def test_a_key_limit_names_a_key_and_any_of_its_limits() -> None:
    assert parse_key_limit("sk-team running=2 queued=30 rate=5/m weight=3") == KeyLimit(
        "sk-team", running=2, queued=30, rate=5, period=60.0, weight=3
    )
    assert parse_key_limit("*  rate=1/h") == KeyLimit("*", rate=1, period=3600.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("sk-secret-key-1234", "'sk-sec…' names no limits"),
        ("k running=0", "running=0: expected a whole number >= 1"),
        ("k queued=ten", "queued=ten: expected a whole number >= 1"),
        ("k rate=5", "rate=5 is not a rate"),
        ("k rate=0/s", "rate=0/s is not a rate"),
        ("k speed=3", "'speed=3' is not a limit"),
        ("k weight=2 weight=3", "weight is given twice"),
    ],
)
def test_a_bad_key_limit_is_a_one_line_error(text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        parse_key_limit(text)
    assert message in str(refused.value)
    assert "secret-key" not in str(refused.value)


def shares(*limits: str, max_queued: int = 10, clock: list[float] | None = None) -> Shares:
    now = clock if clock is not None else [0.0]
    return Shares(
        [parse_key_limit(text) for text in limits], max_queued=max_queued, clock=lambda: now[0]
    )


def test_a_full_queue_refuses_a_key_only_at_its_fair_share() -> None:
    rules = shares(max_queued=10)
    rules.admit("a", QueueCounts(total=9, own=9, keys=1))  # room left: anyone
    with pytest.raises(QueueFull):
        rules.admit("a", QueueCounts(total=10, own=10, keys=1))
    rules.admit("b", QueueCounts(total=10, own=0, keys=1))  # a newcomer: share 10 // 2
    rules.admit("b", QueueCounts(total=14, own=4, keys=2))
    with pytest.raises(QueueFull) as refused:
        rules.admit("b", QueueCounts(total=15, own=5, keys=2))
    assert refused.value.retry_after == 1.0


def test_a_keys_queued_limit_is_its_own() -> None:
    rules = shares("a queued=2", "* queued=5")
    rules.admit("a", QueueCounts(total=2, own=1, keys=1))
    with pytest.raises(QueueFull) as refused:
        rules.admit("a", QueueCounts(total=2, own=2, keys=1))
    assert "its limit of 2" in refused.value.message
    rules.admit("b", QueueCounts(total=6, own=4, keys=2))  # the * entry: 5
    with pytest.raises(QueueFull):
        rules.admit("b", QueueCounts(total=7, own=5, keys=2))


def test_a_rate_is_a_bucket_and_its_refusal_says_when_the_next_create_is_allowed() -> None:
    clock = [100.0]
    rules = shares("a rate=2/m", clock=clock)
    rules.take_rate("a")
    rules.take_rate("a")
    with pytest.raises(QueueFull) as refused:
        rules.take_rate("a")
    assert refused.value.retry_after == pytest.approx(30.0)
    clock[0] += 30.0  # one create's worth has refilled
    rules.take_rate("a")
    with pytest.raises(QueueFull):
        rules.take_rate("a")
    rules.take_rate("b")  # no limit for b
