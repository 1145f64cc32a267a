"""The PostgreSQL store, shared by many replicas.

- :mod:`~outlast.store.postgres.store`: :class:`PostgresStore`, the store and its coordination;
- :mod:`~outlast.store.postgres.queries`: its SQL, read from ``sql/`` (the schema's migrations
  in ``sql/migrations/``, every fixed statement in ``sql/queries.sql``);
- :mod:`~outlast.store.postgres.listen`: the cross-replica notifications, sent and received;
- :mod:`~outlast.store.postgres.connection`: which driver errors mean "unreachable".
"""

from __future__ import annotations

from outlast.store.postgres.listen import (
    CHANNEL_CANCEL,
    CHANNEL_DELETED,
    CHANNEL_EVENTS,
    CHANNEL_WORK,
    NOTIFY_PAYLOAD_MAX,
)
from outlast.store.postgres.store import MIGRATIONS, TAKEOVER_LOCK_TIMEOUT_MS, PostgresStore

__all__ = [
    "CHANNEL_CANCEL",
    "CHANNEL_DELETED",
    "CHANNEL_EVENTS",
    "CHANNEL_WORK",
    "MIGRATIONS",
    "NOTIFY_PAYLOAD_MAX",
    "TAKEOVER_LOCK_TIMEOUT_MS",
    "PostgresStore",
]
