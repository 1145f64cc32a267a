"""Which driver errors mean "the database is unreachable", and the pool's connection reset.

Shared by the store's queries and its notification loop: both turn these errors into
:class:`~outlast.store.base.StoreUnavailable` (or a reconnect), never into a failed run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import asyncpg

from outlast.store.base import StoreUnavailable

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.InterfaceError,
    # A connection the server terminated in the middle of an operation can be left in a protocol
    # state where the next call (the transaction's ROLLBACK) fails client-side; a fresh
    # connection from the pool is the cure, exactly as for the errors above.
    asyncpg.exceptions.InternalClientError,
    # PostgreSQL ended a transaction left idle too long (see ``idle_transaction_ms``).
    asyncpg.exceptions.IdleInTransactionSessionTimeoutError,
)


@contextlib.contextmanager
def unavailable_on_connection_errors() -> Iterator[None]:
    """Raise :class:`StoreUnavailable` instead of a connection error of the driver."""
    try:
        yield
    except CONNECTION_ERRORS as exc:
        raise StoreUnavailable(f"the database is unreachable: {exc}") from exc


async def reset_connection(conn: asyncpg.Connection) -> None:
    """Instead of asyncpg's full reset (a round trip per release: this store never changes
    session settings, and releases its advisory locks itself), only end a stray transaction."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")
