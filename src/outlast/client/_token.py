"""Continuation tokens: where a reader stands in a response's event log.

A token is the response id plus the sequence number of the last event the caller has consumed
(``-1``: none yet). Resuming from it asks the server for the events with a higher number
(``starting_after``), so the caller continues exactly after that event, in any process, against
any base URL that serves the response.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from outlast.client._errors import InvalidToken

# The short form is ``<response id>:<sequence number>``; a bare response id means "from the start".
_SEQ_SUFFIX = re.compile(r":(-1|0|[1-9][0-9]{0,17})\Z")
_ID = re.compile(r"[A-Za-z0-9_\-.]{1,200}")


@dataclass(frozen=True, slots=True)
class ContinuationToken:
    """A response id and the sequence number of the last event consumed.

    ``str(token)`` gives the short form (``"resp_abc…:41"``) and :meth:`parse` reads it back;
    :meth:`to_dict` / :meth:`from_dict` give a JSON-able dict
    (``{"response_id": "resp_abc…", "sequence_number": 41}``) for a database or another process.
    """

    response_id: str
    sequence_number: int = -1
    """The last event consumed; the next resume starts at ``sequence_number + 1``."""

    def __post_init__(self) -> None:
        if not isinstance(self.response_id, str) or not _ID.fullmatch(self.response_id):
            raise InvalidToken(f"not a response id: {self.response_id!r}")
        if (
            not isinstance(self.sequence_number, int)
            or isinstance(self.sequence_number, bool)
            or self.sequence_number < -1
        ):
            raise InvalidToken(f"not a sequence number: {self.sequence_number!r}")

    @property
    def starting_after(self) -> int | None:
        """The ``starting_after`` a resume sends (``None``: from the first event)."""
        return self.sequence_number if self.sequence_number >= 0 else None

    def after(self, sequence_number: int) -> ContinuationToken:
        """The token once the event ``sequence_number`` has been consumed."""
        return ContinuationToken(self.response_id, sequence_number)

    def __str__(self) -> str:
        return f"{self.response_id}:{self.sequence_number}"

    @classmethod
    def parse(cls, text: str) -> ContinuationToken:
        """Read the short form; a bare response id is a token from the start of the stream."""
        if not isinstance(text, str):
            raise InvalidToken(f"not a token string: {text!r}")
        text = text.strip()
        match = _SEQ_SUFFIX.search(text)
        if match is None:
            return cls(text)
        return cls(text[: match.start()], int(match.group(1)))

    def to_dict(self) -> dict[str, Any]:
        return {"response_id": self.response_id, "sequence_number": self.sequence_number}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContinuationToken:
        """Read :meth:`to_dict`'s form; other keys are ignored, a missing sequence number is -1."""
        if not isinstance(data, Mapping) or "response_id" not in data:
            raise InvalidToken(f"not a token: {data!r}")
        return cls(data["response_id"], data.get("sequence_number", -1))

    @classmethod
    def of(cls, value: TokenLike) -> ContinuationToken:
        """A token from a token, its short form, a bare response id, or its dict form."""
        if isinstance(value, ContinuationToken):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        return cls.from_dict(value)


TokenLike = ContinuationToken | str | Mapping[str, Any]
"""What the client's methods accept as a token."""
