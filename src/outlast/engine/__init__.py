"""Runs: queue, concurrency, timeouts, cancellation, recovery; and live event fan-out."""

from outlast.engine.engine import Engine, Run

__all__ = ["Engine", "Run"]
