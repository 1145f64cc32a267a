"""Write ``docs/configuration.md`` from the option table (``outlast.config.OPTIONS``).

The page is generated so that it cannot drift from what ``outlast serve`` accepts: change an
option in ``src/outlast/config.py`` and run ``python scripts/gen_config_docs.py`` (``make
docs-config``); ``--check`` (in ``make lint``, and before ``make docs``) exits non-zero when the
committed page is not what the table generates.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from outlast.config import OPTIONS, Option

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "configuration.md"

INTRO = """\
<!-- Generated from src/outlast/config.py by scripts/gen_config_docs.py: do not edit. -->
# Configuration

Every option of `outlast serve` has a flag and an `OUTLAST_*` environment variable; a flag wins
over its variable, which wins over the default. An empty variable counts as unset. A switch's
variable takes `1`/`0` (or `true`/`false`, `yes`/`no`, `on`/`off`). Durations take seconds or a
number with a unit: `90`, `30s`, `15m`, `12h`, `7d`. A value that does not parse stops the server
with a one-line message naming the flag or the variable.

The same options can be kept in a file, below the flags and the variables: `outlast.toml` in the
current folder, else the `[tool.outlast]` table of its `pyproject.toml`, or any file named by
`--config PATH` (`OUTLAST_CONFIG`). Its keys are the flags' names without `--`, each taking what
the flag takes; a TOML list for a repeatable flag, `true`/`false` for a switch:

```toml
# outlast.toml
agent = "my_agent:agent"
db = "postgresql://outlast@db.internal:5432/outlast"
api-key = ["key-a", "key-b"]
max-running = 8
run-timeout = "2h"
no-console = true
```

An unknown key or a bad value stops the server with one line naming the file and the key.

`outlast serve --help` prints the same table.
"""

OUTRO = """\
Traces are configured by the standard `OTEL_*` variables, which the OpenTelemetry SDK reads
([Observability](observability.md#opentelemetry-traces)).

## Other commands

`outlast db upgrade` takes {db_upgrade}. The client commands (`outlast run`, `tail`, `get`,
`cancel`, `ls`) are a program of their own with two options of their own: `--url`
(`OUTLAST_URL`, default `http://127.0.0.1:8000`) and `--api-key` (`OUTLAST_API_KEY`)
([The command line](cli.md)).
"""


def _cell(text: str) -> str:
    # A pipe inside a cell would end it.
    return text.replace("|", "\\|")


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def _flag(option: Option) -> str:
    if option.kind == "mode":
        return f"`{option.flag}` / `{option.negative_flag}`"
    return f"`{option.flag}`"


def _variable(option: Option) -> str:
    if option.kind == "switch":
        return f"`{option.env_usage}`"
    note = f" ({option.env_note})" if option.env_note else ""
    fallbacks = "".join(f", else `{name}`" for name in option.env_fallbacks)
    return f"`{option.env}`{note}{fallbacks}"


def _default(option: Option) -> str:
    shown = option.shown_default()
    if shown is None:
        return "off" if option.kind == "switch" else "none"
    # A value reads as code; a phrase ("the demo agent") as prose.
    return f"`{shown}`" if " " not in shown else shown


def _description(option: Option) -> str:
    parts = [_sentence(option.help)]
    if option.choices and option.kind != "mode":
        parts.append("One of " + ", ".join(f"`{c}`" for c in option.choices) + ".")
    if option.kind == "list":
        parts.append("Repeatable.")
    if option.details:
        parts.append(option.details)
    return " ".join(parts)


def render() -> str:
    """The page's text."""
    groups: dict[str, list[Option]] = {}
    for option in OPTIONS:
        if "serve" in option.commands:
            groups.setdefault(option.group, []).append(option)
    lines = [INTRO]
    for group, options in groups.items():
        lines += [f"## {group}", "", "| Flag | Variable | Default | |", "|---|---|---|---|"]
        for option in options:
            cells = (_flag(option), _variable(option), _default(option), _description(option))
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines.append("")
    upgrade = [o for o in OPTIONS if "db upgrade" in o.commands]
    db_upgrade = " and ".join(f"`{o.flag}` (`{o.env}`)" for o in upgrade)
    lines.append(OUTRO.format(db_upgrade=db_upgrade))
    return "\n".join(lines)


def main(argv: list[str] | None = None, page: Path = PAGE) -> int:
    """Write (or with ``--check``, compare) the page; the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is out of date")
    args = parser.parse_args(argv)
    expected = render()
    actual = page.read_text() if page.exists() else ""
    if expected == actual:
        return 0
    if not args.check:
        page.write_text(expected)
        print(f"gen_config_docs: wrote {page.name}")
        return 0
    sys.stdout.writelines(
        difflib.unified_diff(
            actual.splitlines(keepends=True),
            expected.splitlines(keepends=True),
            f"{page.name} (committed)",
            f"{page.name} (generated)",
        )
    )
    print(f"gen_config_docs: {page.name} is out of date; run: python scripts/gen_config_docs.py")
    return 1


if __name__ == "__main__":
    sys.exit(main())
