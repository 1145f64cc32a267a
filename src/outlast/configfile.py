"""An optional configuration file with the same options as the flags.

``outlast serve`` (and ``outlast db upgrade``) read, in this order of precedence: the flags, the
``OUTLAST_*`` variables, then a TOML file, then the defaults. The file is ``--config PATH``
(``OUTLAST_CONFIG``), else ``./outlast.toml``, else the ``[tool.outlast]`` table of
``./pyproject.toml``; none is needed. Its keys are the flags' names without ``--``, each taking
what the flag takes (or a TOML list for a repeatable flag, and ``true``/``false`` for a switch)::

    # outlast.toml
    agent = "my_agent:agent"
    db = "postgresql://outlast@db.internal:5432/outlast"
    api-key = ["key-a", "key-b"]
    max-running = 8
    run-timeout = "2h"
    no-console = true

A key that is not an option, or a value its option does not take, stops the server with one line
naming the file and the key, as a bad flag does.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from outlast.config import Option, OptionError, options_for

CONFIG_ENV = "OUTLAST_CONFIG"
FILE_NAME = "outlast.toml"


def find(
    explicit: str | None, environ: Mapping[str, str], here: Path
) -> tuple[str, dict[str, Any]]:
    """The file's name (for messages) and its options table; ``("", {})`` when there is none.

    An explicit ``--config`` (or ``OUTLAST_CONFIG``) must exist; the usual places may not.
    """
    named = explicit or environ.get(CONFIG_ENV, "").strip() or None
    if named is not None:
        path = Path(named)
        if not path.is_file():
            raise OptionError(f"--config {named}: no such file")
        return named, _load(path, named)
    own = here / FILE_NAME
    if own.is_file():
        return FILE_NAME, _load(own, FILE_NAME)
    project = here / "pyproject.toml"
    if project.is_file():
        table = _load(project, "pyproject.toml").get("tool", {}).get("outlast")
        if isinstance(table, dict):
            return "pyproject.toml [tool.outlast]", table
    return "", {}


def _load(path: Path, name: str) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise OptionError(f"{name}: {exc}") from None


def values(table: Mapping[str, Any], source: str, command: str) -> dict[str, Any]:
    """The settings (by ``Option.dest``) a file's table gives for ``command``."""
    every = {option.flag.removeprefix("--"): option for option in options_for_any()}
    mine = {option.flag.removeprefix("--"): option for option in options_for(command)}
    found: dict[str, Any] = {}
    for key, raw in table.items():
        option = every.get(key)
        if option is None:
            raise OptionError(
                f"{source}: unknown option {key!r} (the keys are the flags' names without --, "
                "e.g. max-running)"
            )
        if key in mine:
            found[option.dest] = _value(option, raw, f"{source}: {key}")
    return found


def options_for_any() -> list[Option]:
    """Every option of every command that reads the file."""
    seen: dict[str, Option] = {}
    for command in ("serve", "db upgrade"):
        for option in options_for(command):
            seen.setdefault(option.flag, option)
    return list(seen.values())


def _value(option: Option, raw: Any, source: str) -> Any:
    if option.kind == "switch":
        if not isinstance(raw, bool):
            raise OptionError(f"{source} must be true or false, not {raw!r}")
        # `no-console = true` means what `--no-console` means.
        return option.flag_value if raw else _opposite(option.flag_value)
    if option.kind == "mode" and isinstance(raw, bool):
        assert option.negative is not None
        return option.flag_value if raw else option.negative[0]
    if option.kind == "list":
        items = raw if isinstance(raw, list) else [raw]
        return [option.from_text(_text(item, source), source) for item in items]
    return option.from_text(_text(raw, source), source)


def _opposite(value: Any) -> Any:
    return (not value) if isinstance(value, bool) else None


def _text(raw: Any, source: str) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise OptionError(f"{source}: expected a string or a number, not {raw!r}")
    return str(raw)
