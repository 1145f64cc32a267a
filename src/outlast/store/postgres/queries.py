"""The store's SQL, read from the package's ``sql/`` files (shipped in the wheel beside the code).

``sql/migrations/NNNN_*.sql``: the schema, one file per version, applied in order and recorded in
``schema_version``. ``sql/queries.sql``: every fixed statement, one per ``-- name: <name>`` block,
exposed here as constants, so a statement missing from the file fails at import, not in the
middle of a run. The one statement assembled at run time (the listing's ``WHERE`` and ``ORDER
BY``) is built in :mod:`outlast.store.postgres.store`.
"""

from __future__ import annotations

import re
from importlib.resources import files
from importlib.resources.abc import Traversable

_SQL: Traversable = files(__package__).joinpath("sql")
_MIGRATION_FILE = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")
_NAME = re.compile(r"^-- name: ([a-z_]+)\s*$", re.MULTILINE)


def _migrations() -> list[str]:
    """The migration scripts in version order; their numbers must run 1, 2, 3, … unbroken."""
    found: dict[int, str] = {}
    for entry in _SQL.joinpath("migrations").iterdir():
        match = _MIGRATION_FILE.fullmatch(entry.name)
        if match:
            found[int(match.group(1))] = entry.read_text(encoding="utf-8")
    if sorted(found) != list(range(1, len(found) + 1)):
        raise RuntimeError(f"the migrations are not numbered 1..n: {sorted(found)}")
    return [found[version] for version in sorted(found)]


def parse_queries(text: str) -> dict[str, str]:
    """``-- name: x`` blocks of ``text``: each name's statement, up to the next block."""
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    # parts: [preamble, name, body, name, body, ...]
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise RuntimeError(f"the query {name!r} is defined twice")
        # Section rulers ("-- ====") between blocks belong to no statement.
        lines = [line for line in body.strip().splitlines() if not line.startswith("-- ====")]
        queries[name] = "\n".join(lines).strip()
    return queries


QUERIES: dict[str, str] = parse_queries(_SQL.joinpath("queries.sql").read_text(encoding="utf-8"))
MIGRATIONS: list[str] = _migrations()


def _q(name: str) -> str:
    return QUERIES[name]


# -- migrations ---------------------------------------------------------------------------------
ADVISORY_LOCK = _q("advisory_lock")
CREATE_SCHEMA_VERSION = _q("create_schema_version")
SCHEMA_VERSION = _q("schema_version")
RECORD_SCHEMA_VERSION = _q("record_schema_version")
# -- a write batch ------------------------------------------------------------------------------
INSERT_RESPONSES = _q("insert_responses")
FENCE_HELD = _q("fence_held")
INSERT_EVENTS = _q("insert_events")
WRITE_EVENTS = _q("write_events")
UPDATE_SNAPSHOTS = _q("update_snapshots")
INSERT_OUTBOX = _q("insert_outbox")
INSERT_STEPS = _q("insert_steps")
INSERT_INPUT_ITEMS = _q("insert_input_items")
DELETE_EVENTS = _q("delete_events")
DELETE_STEPS = _q("delete_steps")
DELETE_INPUT_ITEMS = _q("delete_input_items")
DELETE_RESPONSES = _q("delete_responses")
NOTIFY_MANY = _q("notify_many")
# -- reads --------------------------------------------------------------------------------------
RESPONSE_EXISTS = _q("response_exists")
GET_RESPONSE = _q("get_response")
GET_OWNED_RESPONSE = _q("get_owned_response")
READ_EVENTS = _q("read_events")
READ_STEPS = _q("read_steps")
LISTING_CURSOR = _q("listing_cursor")
INPUT_LISTABLE = _q("input_listable")
INPUT_CURSOR_ASC = _q("input_cursor_asc")
INPUT_CURSOR_DESC = _q("input_cursor_desc")
INPUT_PAGE_ASC = _q("input_page_asc")
INPUT_PAGE_DESC = _q("input_page_desc")
UNFINISHED_RESPONSES = _q("unfinished_responses")
EXPIRED_RESPONSE_IDS = _q("expired_response_ids")
COUNT_BY_STATUS = _q("count_by_status")
COUNT_ENDED = _q("count_ended")
# -- the webhook outbox -------------------------------------------------------------------------
CLAIM_OUTBOX = _q("claim_outbox")
OUTBOX_DONE = _q("outbox_done")
OUTBOX_RETRY = _q("outbox_retry")
# -- workers, leases and claims -----------------------------------------------------------------
REGISTER_WORKER = _q("register_worker")
RENEW_LEASE = _q("renew_lease")
REMOVE_WORKER = _q("remove_worker")
TAKE_OVER_EXPIRED = _q("take_over_expired")
CLAIM_QUEUED = _q("claim_queued")
CLAIM = _q("claim")
RELEASE = _q("release")
HELD_UNFINISHED = _q("held_unfinished")
REQUEST_CANCEL = _q("request_cancel")
QUEUE_COUNTS = _q("queue_counts")
CLAIM_LOCK = _q("claim_lock")
ADVANCE_TURNS = _q("advance_turns")
NOTIFY = _q("notify")
TRY_ADVISORY_LOCK = _q("try_advisory_lock")
ADVISORY_UNLOCK = _q("advisory_unlock")
PING = _q("ping")
