"""The notices replicas send each other over LISTEN/NOTIFY, as a listener reads them.

A notice of committed events names the committing replica first, then one response per line
with the first and last sequence number committed; a replica gets the notices of its own
commits too (every listener does) and drops them unread; a payload it cannot read is logged,
never raised into the connection's callback.
"""

from __future__ import annotations

from outlast.store.postgres.listen import CHANNEL_DELETED, CHANNEL_EVENTS, dispatch
from outlast.store.shared import EventsCommitted, Listener


def listener(origin: str | None, seen: list[object]) -> Listener:
    return Listener(
        events=lambda o, committed: seen.append((o, committed)),
        work=lambda: seen.append("work"),
        cancel=lambda rid: seen.append(("cancel", rid)),
        deleted=lambda ids: seen.append(("deleted", ids)),
        reconnected=lambda: seen.append("reconnected"),
        origin=origin,
    )


def test_another_replicas_commits_are_read_line_by_line() -> None:
    seen: list[object] = []
    dispatch(listener("w-a", seen), CHANNEL_EVENTS, "w-b\nresp_1 3 7\nresp_2 0 0")
    assert seen == [("w-b", [EventsCommitted("resp_1", 3, 7), EventsCommitted("resp_2", 0, 0)])]


def test_a_replicas_own_commits_are_dropped_unread() -> None:
    seen: list[object] = []
    dispatch(listener("w-a", seen), CHANNEL_EVENTS, "w-a\nresp_1 3 7")
    dispatch(listener("w-a", seen), CHANNEL_EVENTS, "w-a\nnot even a notice")
    assert seen == []
    # A worker id that merely begins another's is not it.
    dispatch(listener("w-a", seen), CHANNEL_EVENTS, "w-ab\nresp_1 3 7")
    assert seen == [("w-ab", [EventsCommitted("resp_1", 3, 7)])]


def test_an_unreadable_notice_is_logged_not_raised() -> None:
    seen: list[object] = []
    dispatch(listener(None, seen), CHANNEL_EVENTS, "w-b\nresp_1 three 7")
    dispatch(listener(None, seen), CHANNEL_DELETED, "resp_1 resp_2")
    assert seen == [("deleted", ["resp_1", "resp_2"])]
