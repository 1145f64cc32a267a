"""The hub: in-memory fan-out of committed events to each response's live readers.

The contract of :class:`outlast.engine.hub.Hub` and its :class:`Subscription`:

- a publish reaches every current subscriber of that response, and no one else, in order;
- publishing never waits: a subscription buffers events until its reader takes them;
- a subscription whose buffer would pass ``SUBSCRIBER_BUFFER`` is marked overflowed and its
  buffer dropped (its reader must catch up from the store), and it ignores publishes until it
  is reset; other subscribers of the same response are unaffected (invariant 5);
- an unsubscribed reader gets nothing more, and a response without readers is forgotten;
- closing the hub closes every subscription, and any taken afterwards, waking their readers.
"""

from __future__ import annotations

import asyncio

import pytest
from test_store_contract import events

from outlast.engine import hub as hub_module
from outlast.engine.hub import Hub


def test_a_publish_reaches_every_subscriber_of_its_response_and_no_other() -> None:
    hub = Hub()
    first, second = hub.subscribe("resp_a"), hub.subscribe("resp_a")
    other = hub.subscribe("resp_b")
    hub.publish("resp_a", events(0, 1))
    hub.publish("resp_a", events(2, 2))
    assert [e.seq for e in first.take()] == [0, 1, 2]
    assert [e.seq for e in second.take()] == [0, 1, 2]
    assert other.take() == []


def test_publishing_to_a_response_nobody_reads_is_a_no_op() -> None:
    hub = Hub()
    hub.publish("resp_a", events(0, 3))
    assert not hub.has_subscribers("resp_a")
    assert hub.open_streams == 0


def test_take_hands_over_the_buffer_and_leaves_it_empty() -> None:
    hub = Hub()
    subscription = hub.subscribe("resp_a")
    hub.publish("resp_a", events(0, 2))
    assert [e.seq for e in subscription.take()] == [0, 1, 2]
    assert subscription.take() == []


def test_a_full_buffer_overflows_drops_what_it_held_and_ignores_more_until_reset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hub_module, "SUBSCRIBER_BUFFER", 4)
    hub = Hub()
    slow, fast = hub.subscribe("resp_a"), hub.subscribe("resp_a")
    hub.publish("resp_a", events(0, 2))
    assert [e.seq for e in fast.take()] == [0, 1, 2]
    hub.publish("resp_a", events(3, 4))  # slow would hold 5 > 4
    assert slow.overflowed and slow.take() == []
    hub.publish("resp_a", events(5, 5))
    assert slow.take() == []
    assert [e.seq for e in fast.take()] == [3, 4, 5]
    slow.reset()
    hub.publish("resp_a", events(6, 6))
    assert not slow.overflowed
    assert [e.seq for e in slow.take()] == [6]


def test_a_buffer_may_fill_exactly_to_its_size_without_overflowing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hub_module, "SUBSCRIBER_BUFFER", 4)
    hub = Hub()
    subscription = hub.subscribe("resp_a")
    hub.publish("resp_a", events(0, 3))
    assert not subscription.overflowed
    assert len(subscription.take()) == 4


async def test_wait_returns_at_once_when_events_are_buffered_and_wakes_on_a_publish() -> None:
    hub = Hub()
    subscription = hub.subscribe("resp_a")
    hub.publish("resp_a", events(0, 0))
    assert await subscription.wait(timeout=60)
    subscription.take()
    waiting = asyncio.ensure_future(subscription.wait(timeout=60))
    await asyncio.sleep(0)
    assert not waiting.done()
    hub.publish("resp_a", events(1, 1))
    assert await waiting
    assert [e.seq for e in subscription.take()] == [1]


async def test_wait_says_false_when_nothing_came_before_the_timeout() -> None:
    hub = Hub()
    subscription = hub.subscribe("resp_a")
    assert not await subscription.wait(timeout=0.001)


async def test_each_wait_times_out_at_its_own_deadline_whatever_the_waits_before_it() -> None:
    # One timer serves a subscription's waits: armed for an earlier wait, it must neither end a
    # later, longer wait early nor hold a shorter one past its deadline.
    hub = Hub()
    subscription = hub.subscribe("resp_a")
    hub.publish("resp_a", events(0, 0))
    assert await subscription.wait(timeout=0.01)  # at once: the timer is armed all the same
    subscription.take()
    waiting = asyncio.ensure_future(subscription.wait(timeout=60))
    await asyncio.sleep(0.05)  # past the first wait's deadline
    assert not waiting.done()
    hub.publish("resp_a", events(1, 1))
    assert await waiting
    subscription.take()
    assert not await subscription.wait(timeout=0.001)  # shorter than the timer armed for 60 s


async def test_unsubscribing_cancels_the_subscriptions_timer() -> None:
    hub = Hub()
    subscription = hub.subscribe("resp_a")
    waiting = asyncio.ensure_future(subscription.wait(timeout=60))
    await asyncio.sleep(0)
    timer = subscription._timer
    assert timer is not None
    waiting.cancel()
    hub.unsubscribe(subscription)
    assert timer.cancelled()
    assert subscription._timer is None


async def test_an_overflow_wakes_the_waiting_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_module, "SUBSCRIBER_BUFFER", 1)
    hub = Hub()
    subscription = hub.subscribe("resp_a")
    waiting = asyncio.ensure_future(subscription.wait(timeout=60))
    await asyncio.sleep(0)
    hub.publish("resp_a", events(0, 1))
    assert await waiting
    assert subscription.overflowed


def test_an_unsubscribed_reader_gets_nothing_more_and_the_last_one_out_forgets_the_response() -> (
    None
):
    hub = Hub()
    first, second = hub.subscribe("resp_a"), hub.subscribe("resp_a")
    assert hub.open_streams == 2
    hub.unsubscribe(first)
    hub.publish("resp_a", events(0, 0))
    assert first.take() == []
    assert [e.seq for e in second.take()] == [0]
    assert hub.has_subscribers("resp_a")
    hub.unsubscribe(second)
    hub.unsubscribe(second)  # twice is harmless
    assert not hub.has_subscribers("resp_a")
    assert hub.subscribed_ids() == []
    assert hub.open_streams == 0


async def test_closing_the_hub_closes_and_wakes_every_subscription_and_later_ones() -> None:
    hub = Hub()
    subscription = hub.subscribe("resp_a")
    waiting = asyncio.ensure_future(subscription.wait(timeout=60))
    await asyncio.sleep(0)
    hub.close()
    assert await waiting
    assert subscription.closed
    late = hub.subscribe("resp_b")
    assert late.closed
    assert await late.wait(timeout=60)
