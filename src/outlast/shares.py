"""Per-key shares of the run queue: the ``--key-limit`` option's format and what it declares.

One ``--key-limit`` (or one comma-separated entry of ``OUTLAST_KEY_LIMITS``) names an API key, or
``*`` for every key without an entry of its own, then its limits, separated by spaces::

    --key-limit '* queued=200 rate=10/s'
    --key-limit 'sk-batch-team running=20 queued=5000 rate=600/m weight=1'
    --key-limit 'sk-interactive weight=4'

- ``running=N``: at most N of the key's runs execute at once; the rest wait their turn, queued.
- ``queued=N``: at most N of the key's runs wait at once; beyond it a create gets 429.
- ``rate=N/s`` (``/m``, ``/h``): creates allowed per period (a token bucket holding N); beyond
  it a create gets 429 with the seconds until the next one is allowed in ``Retry-After``.
- ``weight=N``: the key's share of free slots among keys with runs waiting (default 1: equal).

A space separates the key from its limits because a key can never hold one: it travels in one
``Authorization: Bearer <key>`` header token. This module is a leaf (the option table imports it);
the engine applies the limits (:mod:`outlast.engine.shares`).
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass

EVERY_KEY = "*"
"""The selector of the limits every key without an entry of its own gets."""

_PERIODS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_RATE = re.compile(r"([0-9]+)/([smh])")


@dataclass(frozen=True, slots=True)
class KeyLimit:
    """The limits one ``--key-limit`` declares for ``key`` (``None``: no limit of that kind)."""

    key: str
    running: int | None = None
    queued: int | None = None
    rate: int | None = None
    """Creates allowed per ``period`` seconds (also the bucket's size: a burst of ``rate``)."""
    period: float = 1.0
    weight: int = 1


def parse_key_limit(text: str) -> KeyLimit:
    """``'KEY running=N queued=N rate=N/s weight=N'`` as a :class:`KeyLimit` (an
    ``argparse.ArgumentTypeError`` saying what is wrong otherwise)."""
    words = text.split()
    if not words:
        raise argparse.ArgumentTypeError("empty: write 'KEY running=N queued=N rate=N/s weight=N'")
    key, *parts = words
    if not parts:
        raise argparse.ArgumentTypeError(
            f"{_shown(key)!r} names no limits: write 'KEY running=N queued=N rate=N/s weight=N' "
            "(any of them)"
        )
    values: dict[str, object] = {}
    for part in parts:
        name, sep, value = part.partition("=")
        if not sep or name not in ("running", "queued", "rate", "weight"):
            raise argparse.ArgumentTypeError(
                f"{part!r} is not a limit: expected running=N, queued=N, rate=N/s|m|h or weight=N"
            )
        if name in values:
            raise argparse.ArgumentTypeError(f"{name} is given twice for {_shown(key)!r}")
        if name == "rate":
            match = _RATE.fullmatch(value)
            if match is None or int(match[1]) < 1:
                raise argparse.ArgumentTypeError(
                    f"rate={value} is not a rate: expected N/s, N/m or N/h with N at least 1"
                )
            values["rate"] = int(match[1])
            values["period"] = _PERIODS[match[2]]
            continue
        if not value.isascii() or not value.isdigit() or int(value) < 1:
            raise argparse.ArgumentTypeError(f"{name}={value}: expected a whole number >= 1")
        values[name] = int(value)
    return KeyLimit(key, **values)  # type: ignore[arg-type]


def _shown(key: str) -> str:
    """A key as an error message may show it: its start only (a key is a secret)."""
    return key if key == EVERY_KEY or len(key) <= 6 else key[:6] + "…"
