"""outlast's own compaction items: a whole conversation in one ``compaction`` input item.

``POST /v1/responses/compact`` answers with a ``compaction`` item (the SDK's
``ResponseCompactionItem``) when the agent has no compaction of its own. Its
``encrypted_content`` is :data:`PREFIX` and the conversation's items as zlib-compressed JSON in
URL-safe base64: nothing is summarised away, so it round-trips losslessly. A later request that
carries the item (in its ``input``, or in a ``previous_response_id`` chain) hands its agent the
original items in its place (:func:`expand`), so the agent sees the conversation as it was.

The content is only encoded, not encrypted: whoever holds the item could have sent its items
as input anyway, and :func:`expand` accepts only what decodes to a list of item objects.
Compaction items of anyone else (a model's, opaque) pass through unchanged.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from outlast.protocol.ids import new_id

PREFIX = "outlast.compaction.v1:"
"""The start of the ``encrypted_content`` of outlast's own compaction items."""
MAX_EXPANDED_BYTES = 256 * 1024 * 1024
"""An item never expands to more than this (a compressed bomb is refused, not inflated)."""


class BadCompaction(ValueError):
    """A compaction item carries outlast's prefix but not a conversation it could have made."""


class CompactionTooLarge(BadCompaction):
    """The conversations compaction items hold come to more than the bytes allowed."""


def compaction_item(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The compaction item holding ``items`` (the SDK's ``ResponseCompactionItem`` shape)."""
    packed = zlib.compress(orjson.dumps(list(items)), 6)
    return {
        "id": new_id("cmp"),
        "type": "compaction",
        "encrypted_content": PREFIX + base64.urlsafe_b64encode(packed).decode("ascii"),
        "created_by": "outlast",
    }


def is_ours(item: Mapping[str, Any]) -> bool:
    """``item`` is an outlast compaction item (others' are opaque and passed on as they are)."""
    content = item.get("encrypted_content")
    return (
        item.get("type") == "compaction" and isinstance(content, str) and content.startswith(PREFIX)
    )


def _decode(item: Mapping[str, Any], max_bytes: int) -> tuple[list[dict[str, Any]], int]:
    """The conversation an outlast compaction item holds and the bytes of its JSON;
    :class:`BadCompaction` if it holds none, :class:`CompactionTooLarge` if its JSON is over
    ``max_bytes``."""
    content = str(item.get("encrypted_content", ""))[len(PREFIX) :]
    try:
        packed = base64.urlsafe_b64decode(content.encode("ascii"))
        inflater = zlib.decompressobj()
        # Inflated up to the bound only: a small item cannot make a large allocation.
        raw = inflater.decompress(packed, max_bytes + 1)
        if len(raw) > max_bytes or inflater.unconsumed_tail:
            raise CompactionTooLarge(
                f"The compaction items of the input hold more than {max_bytes} bytes."
            )
        items = orjson.loads(raw)
    except (binascii.Error, UnicodeEncodeError, ValueError, zlib.error) as exc:
        if isinstance(exc, BadCompaction):
            raise
        raise BadCompaction("The compaction item's encrypted_content is not valid.") from None
    if not isinstance(items, list) or not all(_item_shaped(i) for i in items):
        raise BadCompaction("The compaction item's encrypted_content is not valid.")
    return items, len(raw)


def _item_shaped(item: Any) -> bool:
    """An item as outlast stores them (what a compaction of its own holds): an object with a
    string ``type``, a message with a string ``role`` and its content as parts. The agent gets
    them as they are, so a forged item gets no further than a malformed one would."""
    if not isinstance(item, dict) or not isinstance(item.get("type"), str):
        return False
    if item["type"] == "message":
        content = item.get("content")
        return isinstance(item.get("role"), str) and (
            isinstance(content, str)
            or (isinstance(content, list) and all(isinstance(p, dict) for p in content))
        )
    return True


def expand(
    items: list[dict[str, Any]], max_bytes: int = MAX_EXPANDED_BYTES
) -> list[dict[str, Any]]:
    """``items`` with each outlast compaction item replaced by the conversation it holds (in
    place, in order); any other item as it is. :class:`BadCompaction` for one that is corrupt,
    :class:`CompactionTooLarge` when what they hold comes to more than ``max_bytes`` of JSON.
    Without such an item, ``items`` itself comes back (nothing is copied)."""
    if not any(item.get("type") == "compaction" and is_ours(item) for item in items):
        return items
    expanded: list[dict[str, Any]] = []
    budget = max_bytes
    for item in items:
        if is_ours(item):
            held, size = _decode(item, budget)
            budget -= size
            expanded.extend(held)
        else:
            expanded.append(item)
    return expanded


class CompactSpec:
    """One ``POST /v1/responses/compact``, in domain terms: the conversation to compact (the
    chain ending at ``previous_response_id``, then ``input_items``) and for which model.
    ``extra``: the other parameters the client sent, handed to an agent's compaction hook."""

    __slots__ = ("extra", "input_items", "instructions", "model", "previous_response_id")

    def __init__(
        self,
        model: str,
        input_items: list[dict[str, Any]],
        instructions: str | None = None,
        previous_response_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.input_items = input_items
        self.instructions = instructions
        self.previous_response_id = previous_response_id
        self.extra = extra or {}
