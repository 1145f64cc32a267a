"""Identifiers in OpenAI's shapes (``resp_…``, ``msg_…``, ``fc_…``)."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """``prefix_`` then 48 random hex digits, like OpenAI's ids."""
    return f"{prefix}_{secrets.token_hex(24)}"
