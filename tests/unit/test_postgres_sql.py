"""The PostgreSQL store's SQL files: found as package resources, complete, and each one used.

The statements live in ``outlast/store/postgres/sql/`` and are read with importlib.resources, so
they must be where the installed package is (hatch ships non-Python files under ``src/outlast``
in the wheel). Migrations are numbered 1, 2, 3, … without a gap and apply in that order; every
``-- name:`` block of ``queries.sql`` is exposed as a constant and used by the store or its
listener, so the file holds no forgotten statement. No database is needed: the store's behaviour
on PostgreSQL is covered by tests/cluster and the PostgreSQL runs of tests/e2e.
"""

from __future__ import annotations

import ast
from importlib.resources import files
from pathlib import Path

import pytest

import outlast.store.postgres as postgres
from outlast.store.postgres import queries

PACKAGE_DIR = Path(postgres.__file__).parent


def test_the_sql_files_are_resources_of_the_installed_package() -> None:
    sql = files("outlast.store.postgres").joinpath("sql")
    assert sql.joinpath("queries.sql").is_file()
    names = sorted(entry.name for entry in sql.joinpath("migrations").iterdir())
    assert names[:3] == [
        "0001_responses_events_workers.sql",
        "0002_webhook_outbox.sql",
        "0003_queue_holds_foreground_runs.sql",
    ]
    # Where the package was imported from, not the repository's working directory.
    assert (PACKAGE_DIR / "sql" / "queries.sql").is_file()


def test_migrations_are_applied_in_file_number_order() -> None:
    assert len(postgres.MIGRATIONS) >= 3
    assert "CREATE TABLE responses" in postgres.MIGRATIONS[0]
    assert "CREATE TABLE webhook_outbox" in postgres.MIGRATIONS[1]
    assert "DROP INDEX responses_queue" in postgres.MIGRATIONS[2]


def test_every_named_query_is_a_constant_that_the_store_uses() -> None:
    constants = {
        name: value
        for name, value in vars(queries).items()
        if name.isupper() and isinstance(value, str)
    }
    assert set(constants.values()) == set(queries.QUERIES.values())
    used: set[str] = set()
    for module in ("store.py", "write.py", "listen.py"):
        tree = ast.parse((PACKAGE_DIR / module).read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "queries"
            ):
                used.add(node.attr)
    assert set(constants) - {"MIGRATIONS"} <= used


def test_a_query_block_runs_to_the_next_name_and_keeps_its_own_comments() -> None:
    text = (
        "-- preamble\n\n-- name: first\n-- why first\nSELECT 1\n\n"
        "-- ==== a ruler ====\n\n-- name: second\nSELECT\n  2\n"
    )
    assert queries.parse_queries(text) == {
        "first": "-- why first\nSELECT 1",
        "second": "SELECT\n  2",
    }


def test_a_query_defined_twice_is_refused() -> None:
    with pytest.raises(RuntimeError, match="twice"):
        queries.parse_queries("-- name: a\nSELECT 1\n-- name: a\nSELECT 2\n")
