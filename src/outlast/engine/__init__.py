"""Runs: queue, concurrency, timeouts, cancellation, recovery; and live event fan-out.

Transports use :class:`Engine` (its methods speak domain terms: a
:class:`~outlast.protocol.spec.RunSpec` in, a :class:`RunHandle` and
:class:`~outlast.protocol.events.Event` batches out) and the errors of :mod:`outlast.engine.errors`.
"""

from outlast.engine.engine import Engine
from outlast.engine.run import RunHandle

__all__ = ["Engine", "RunHandle"]
