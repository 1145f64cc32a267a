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


def decode(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The conversation an outlast compaction item holds; :class:`BadCompaction` if it holds
    none."""
    content = str(item.get("encrypted_content", ""))[len(PREFIX) :]
    try:
        packed = base64.urlsafe_b64decode(content.encode("ascii"))
        inflater = zlib.decompressobj()
        raw = inflater.decompress(packed, MAX_EXPANDED_BYTES)
        if inflater.unconsumed_tail:
            raise BadCompaction(
                f"The compaction item expands to more than {MAX_EXPANDED_BYTES} bytes."
            )
        items = orjson.loads(raw)
    except (binascii.Error, UnicodeEncodeError, ValueError, zlib.error) as exc:
        if isinstance(exc, BadCompaction):
            raise
        raise BadCompaction("The compaction item's encrypted_content is not valid.") from None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise BadCompaction("The compaction item's encrypted_content is not valid.")
    return items


def expand(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``items`` with each outlast compaction item replaced by the conversation it holds (in
    place, in order); any other item as it is. :class:`BadCompaction` for one that is corrupt.
    Without such an item, ``items`` itself comes back (nothing is copied)."""
    if not any(item.get("type") == "compaction" and is_ours(item) for item in items):
        return items
    expanded: list[dict[str, Any]] = []
    for item in items:
        if is_ours(item):
            expanded.extend(decode(item))
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
