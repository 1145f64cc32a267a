"""The option table (``outlast.config.OPTIONS``): each server option is declared once, with a flag,
an ``OUTLAST_*`` variable, a default and a help, and the command line, the environment and the
settings' defaults all come from it. A flag wins over its variable, which wins over the default.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from outlast import config
from outlast.cli import build_parser, main
from outlast.client.cli import DEFAULT_URL, connection
from outlast.config import OPTIONS, OPTIONS_BY_DEST, Option, OptionError, Settings

# One value for every option, as its flag takes it (a list option: two items).
SAMPLES: dict[str, str | list[str]] = {
    "host": "0.0.0.0",
    "port": "9123",
    "db": "postgresql://postgres@127.0.0.1:5432/elsewhere",
    "agent": "my_agent:agent",
    "api_keys": ["key-a", "key-b"],
    "max_body_bytes": "1024",
    "sqlite_synchronous": "NORMAL",
    "commit_delay_ms": "0",
    "log_level": "debug",
    "log_format": "json",
    "cors_origins": ["http://localhost:5173", "https://app.example"],
    "max_running": "3",
    "max_queued": "4",
    "key_limits": ["* queued=5 rate=10/m", "key-a running=2 weight=3"],
    "run_timeout": "15m",
    "max_input_items": "500",
    "max_conversation_bytes": "1048576",
    "max_streams_per_key": "20",
    "max_streams_per_response": "5",
    "header_timeout": "3",
    "body_timeout": "30s",
    "keep_alive_timeout": "2",
    "max_connections": "300",
    "max_header_bytes": "8192",
    "drain_timeout": "5",
    "retention": "2d",
    "retention_interval": "30s",
    "role": "worker",
    "lease_seconds": "20",
    "max_attempts": "2",
    "max_resumes": "5",
    "websocket_connection_limit": "30m",
    "max_pending_steers": "4",
    "db_pool_size": "7",
    "a2a.name": "Researcher",
    "a2a.description": "Looks things up",
    "a2a.skills": ['{"name": "Search", "description": "finds things"}'],
    "a2a.input_modes": ["text/plain", "image/*"],
    "a2a.url": "https://agents.example.com",
    "a2a.db": "sqlite:///./var/a2a.db",
    "a2a.card_max_age": "1h",
    "a2a.grpc_port": "50051",
    "a2a.grpc_url": "agents.example.com:443",
    "observe.webhooks": ["https://hooks.example.com/a", "https://hooks.example.com/b"],
    "observe.webhook_secret": "whsec_c2VjcmV0",
    "observe.webhook_retry_period": "1h",
    "observe.webhook_concurrency": "2",
    "observe.webhook_timeout": "3",
    "upstream.base_url": "http://127.0.0.1:11434/v1",
    "upstream.api_key": "upstream-key",
    "upstream.model": "llama3",
    "upstream.api": "responses",
}
# The variables (and their flags) that existed before the table, whose names must not change.
LEGACY = {
    "--db": "OUTLAST_DATABASE_URL",
    "--agent": "OUTLAST_AGENT",
    "--api-key": "OUTLAST_API_KEYS",
    "--role": "OUTLAST_ROLE",
    "--a2a": "OUTLAST_A2A",
    "--a2a-name": "OUTLAST_A2A_NAME",
    "--a2a-description": "OUTLAST_A2A_DESCRIPTION",
    "--a2a-skill": "OUTLAST_A2A_SKILLS",
    "--a2a-input-mode": "OUTLAST_A2A_INPUT_MODES",
    "--a2a-url": "OUTLAST_A2A_URL",
    "--a2a-db": "OUTLAST_A2A_DATABASE_URL",
    "--a2a-allow-private-push": "OUTLAST_A2A_ALLOW_PRIVATE_PUSH",
    "--webhook": "OUTLAST_WEBHOOKS",
    "--webhook-secret": "OUTLAST_WEBHOOK_SECRET",
    "--upstream-base-url": "OUTLAST_UPSTREAM_BASE_URL",
    "--upstream-api-key": "OUTLAST_UPSTREAM_API_KEY",
    "--upstream-model": "OUTLAST_UPSTREAM_MODEL",
    "--upstream-api": "OUTLAST_UPSTREAM_API",
}


def from_command_line(argv: list[str], environ: dict[str, str] | None = None) -> Settings:
    """The settings ``outlast serve ARGV`` builds, by the CLI's own parser, under ``environ``."""
    return config.settings_from(build_parser().parse_args(["serve", *argv]), environ or {})


def value_of(settings: Settings, dest: str) -> Any:
    group, _, name = dest.rpartition(".")
    return getattr(getattr(settings, group) if group else settings, name)


def flag_and_env(option: Option) -> tuple[list[str], dict[str, str]]:
    """The same non-default value of ``option``, once as flags and once as its variable."""
    if option.kind == "switch":
        return [option.flag], {option.env: "1" if option.flag_value else "0"}
    if option.kind == "mode":
        return [option.flag], {option.env: option.flag_value}
    sample = SAMPLES[option.dest]
    if isinstance(sample, list):
        argv = [part for item in sample for part in (option.flag, item)]
        separator = option.separator or ""
        assert option.separator is not None or len(sample) == 1
        return argv, {option.env: separator.join(sample)}
    return [option.flag, sample], {option.env: sample}


def test_every_option_has_a_flag_a_variable_a_help_and_a_group() -> None:
    for option in OPTIONS:
        assert option.flag.startswith("--"), option
        assert option.env.startswith("OUTLAST_"), option
        assert option.help and option.group, option
    assert len({o.flag for o in OPTIONS}) == len({o.env for o in OPTIONS}) == len(OPTIONS)


def test_the_table_covers_every_settings_field_and_nothing_else() -> None:
    assert set(OPTIONS_BY_DEST) == config.field_names()


def test_the_settings_defaults_are_the_tables() -> None:
    settings = Settings()
    for option in OPTIONS:
        assert value_of(settings, option.dest) == option.default, option.dest


def test_the_variables_that_existed_keep_their_names() -> None:
    assert {o.flag: o.env for o in OPTIONS if o.flag in LEGACY} == LEGACY


def test_the_defaults_that_the_readme_names_are_unchanged() -> None:
    settings = Settings()
    assert (settings.host, settings.port, settings.max_running, settings.max_queued) == (
        "127.0.0.1",
        8000,
        1000,
        10_000,
    )
    assert (settings.run_timeout, settings.retention, settings.drain_timeout) == (
        3600.0,
        7 * 86400.0,
        30.0,
    )
    assert settings.db == "sqlite:///./var/outlast.db"
    assert settings.agent == "outlast.agents.demo:agent"


def test_no_flags_and_no_variables_give_the_default_settings() -> None:
    assert from_command_line([]) == Settings()


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.flag)
def test_a_flag_and_its_variable_give_the_same_settings(option: Option) -> None:
    argv, environ = flag_and_env(option)
    by_flag, by_env = from_command_line(argv), from_command_line([], environ)
    assert by_flag == by_env
    assert value_of(by_flag, option.dest) != option.default, "the sample must change something"


def test_every_option_at_once_parses_the_same_from_flags_and_from_variables() -> None:
    argv: list[str] = []
    environ: dict[str, str] = {}
    for option in OPTIONS:
        flags, variables = flag_and_env(option)
        argv += flags
        environ.update(variables)
    by_flag = from_command_line(argv)
    assert by_flag == from_command_line([], environ)
    assert by_flag.max_running == 3 and by_flag.run_timeout == 900.0
    assert by_flag.api_keys == ["key-a", "key-b"] and by_flag.observe.metrics is False


def test_a_flag_wins_over_its_variable() -> None:
    settings = from_command_line(
        ["--max-running", "7", "--no-a2a", "--api-key", "k"],
        {"OUTLAST_MAX_RUNNING": "5", "OUTLAST_A2A": "on", "OUTLAST_API_KEYS": "x,y"},
    )
    assert (settings.max_running, settings.a2a.enabled, settings.api_keys) == (7, "off", ["k"])


def test_an_empty_variable_counts_as_unset() -> None:
    settings = from_command_line([], {"OUTLAST_MAX_RUNNING": "", "OUTLAST_API_KEYS": " "})
    assert settings == Settings()


def test_the_upstream_key_falls_back_to_openais_variable() -> None:
    assert from_command_line([], {"OPENAI_API_KEY": "sk-x"}).upstream.api_key == "sk-x"
    settings = from_command_line([], {"OPENAI_API_KEY": "sk-x", "OUTLAST_UPSTREAM_API_KEY": "u"})
    assert settings.upstream.api_key == "u"


def test_db_upgrade_takes_the_database_option_from_the_same_table() -> None:
    args = build_parser().parse_args(["db", "upgrade"])
    environ = {"OUTLAST_DATABASE_URL": "sqlite:///./x.db", "OUTLAST_MAX_RUNNING": "oops"}
    # Only the options of `db upgrade` are read: a bad serve-only variable does not matter.
    assert config.settings_from(args, environ, command="db upgrade").db == "sqlite:///./x.db"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("OUTLAST_MAX_RUNNING", "many", "OUTLAST_MAX_RUNNING: not an integer: 'many'"),
        ("OUTLAST_MAX_RUNNING", "0", "OUTLAST_MAX_RUNNING: must be at least 1"),
        ("OUTLAST_RUN_TIMEOUT", "soon", "OUTLAST_RUN_TIMEOUT: not a duration: 'soon'"),
        ("OUTLAST_ROLE", "boss", "OUTLAST_ROLE must be one of both, api, worker, not 'boss'"),
        ("OUTLAST_A2A", "maybe", "OUTLAST_A2A must be one of auto, on, off, not 'maybe'"),
        ("OUTLAST_INSECURE", "sure", "OUTLAST_INSECURE: not a boolean: 'sure'"),
    ],
)
def test_a_bad_variable_is_refused_in_one_line_naming_it(
    variable: str,
    value: str,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(OptionError, match="^" + message.split(":")[0]):
        from_command_line([], {variable: value})
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as exited:
        main(["serve"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"outlast: {message}")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_bad_flag_is_refused_by_argparse_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--max-running", "0"])
    assert exited.value.code == 2
    assert "argument --max-running: must be at least 1" in capsys.readouterr().err


def test_help_names_each_variable_and_the_tables_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--help"])
    assert exited.value.code == 0
    squashed = " ".join(capsys.readouterr().out.split())
    for option in OPTIONS:
        assert option.flag in squashed and option.env in squashed, option.flag
    assert "(env OUTLAST_MAX_RUNNING; default 1000)" in squashed
    assert "(repeatable; env OUTLAST_API_KEYS, comma-separated)" in squashed


def test_the_client_commands_read_their_own_two_variables_after_their_flags() -> None:
    flags = argparse.Namespace(url="http://127.0.0.1:9/", api_key="flag-key")
    none = argparse.Namespace(url=None, api_key=None)
    environ = {"OUTLAST_URL": "http://127.0.0.1:8/", "OUTLAST_API_KEY": "env-key"}
    assert connection(flags, environ) == ("http://127.0.0.1:9/", "flag-key")
    assert connection(none, environ) == ("http://127.0.0.1:8/", "env-key")
    assert connection(none, {}) == (DEFAULT_URL, "none")


def _docs_generator() -> Any:
    """``scripts/gen_config_docs.py`` (a script, not a package module)."""
    path = Path(__file__).resolve().parents[2] / "scripts" / "gen_config_docs.py"
    spec = importlib.util.spec_from_file_location("gen_config_docs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_configuration_page_is_what_the_table_generates() -> None:
    generator = _docs_generator()
    assert generator.PAGE.read_text() == generator.render()


def test_the_configuration_page_lists_every_flag_variable_and_default() -> None:
    page = _docs_generator().render()
    for option in OPTIONS:
        row = next(line for line in page.splitlines() if line.startswith(f"| `{option.flag}`"))
        assert option.env in row, option.flag
        shown = option.shown_default()
        assert shown is None or shown in row, option.flag


def test_a_stale_configuration_page_fails_the_check(tmp_path: Path) -> None:
    generator = _docs_generator()
    page = tmp_path / "configuration.md"
    assert generator.main([], page=page) == 0
    assert generator.main(["--check"], page=page) == 0
    page.write_text(page.read_text().replace("`1000`", "`999`"))
    assert generator.main(["--check"], page=page) == 1


def test_the_default_limits_leave_room_for_one_keys_thousands_of_concurrent_long_runs() -> None:
    # A server without keys serves everyone as one key: its defaults must not refuse the 2,000
    # concurrent streamed runs of the peer benchmarks (500 streams per key once did), and the
    # connection limit must stay above what one key may hold, so other keys still get in.
    settings = Settings()
    assert settings.max_streams_per_key >= 2000
    assert settings.max_connections >= 2 * settings.max_streams_per_key


# -- every flag has a variable; only the configuration layer reads the environment -----------


def _option_actions(parser: argparse.ArgumentParser, path: str = "outlast") -> dict[str, Any]:
    """Every flag of ``parser`` and of its subcommands, by ``"outlast serve --port"``."""
    found: dict[str, Any] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(_option_actions(sub, f"{path} {name}"))
        elif not isinstance(action, argparse._HelpAction):
            for flag in action.option_strings:
                if flag.startswith("--"):
                    found[f"{path} {flag}"] = action
    return found


def test_every_flag_of_the_server_and_of_the_clients_connection_names_its_variable() -> None:
    actions = _option_actions(build_parser())
    server = {k: a for k, a in actions.items() if k.startswith(("outlast serve ", "outlast db "))}
    connection_flags = {k: a for k, a in actions.items() if k.endswith(("--url", "--api-key"))}
    assert len(server) > len(OPTIONS) and "outlast serve --config" in server
    assert "outlast ls --url" in connection_flags and "outlast --api-key" in connection_flags
    # A mode's second flag (--no-a2a) shares the first one's variable, named in its help.
    second_flags = {option.negative_flag for option in OPTIONS if option.kind == "mode"}
    unnamed = [
        key
        for key, action in {**server, **connection_flags}.items()
        if "env OUTLAST_" not in (action.help or "") and key.split()[-1] not in second_flags
    ]
    assert unnamed == []


# The modules that may read the process's environment, and why; any other is a finding.
ENVIRONMENT_READERS = {
    "outlast/config.py": "the server's options: settings_from, the one place that reads them",
    "outlast/cli.py": "hands the environment to the configuration file's lookup (OUTLAST_CONFIG)",
    "outlast/client/_common.py": "the client commands' own two options, OUTLAST_URL and "
    "OUTLAST_API_KEY (the client is a program of its own)",
    "outlast/observe/tracing.py": "OpenTelemetry's standard OTEL_* variables, which its SDK "
    "defines and reads itself; outlast reads them to build the exporter the same way",
    "outlast/observe/setup.py": "whether any OTEL_* variable is set, to import OpenTelemetry "
    "only when tracing may be asked for",
}


def environment_reads(source: str) -> list[int]:
    """The lines of ``source`` that touch ``os.environ`` or ``os.getenv`` (or import them)."""
    import ast

    names = {"environ", "environb", "getenv", "getenvb"}
    lines = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in names
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ) or (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and any(alias.name in names for alias in node.names)
        ):
            lines.append(node.lineno)
    return lines


def test_only_the_configuration_layer_reads_the_environment() -> None:
    package = Path(config.__file__).parent
    readers = {
        path.relative_to(package.parent).as_posix(): found
        for path in sorted(package.rglob("*.py"))
        if (found := environment_reads(path.read_text()))
    }
    assert set(readers) <= set(ENVIRONMENT_READERS), {
        name: lines for name, lines in readers.items() if name not in ENVIRONMENT_READERS
    }


def test_the_environment_finder_finds_every_way_of_reading_it() -> None:
    source = (
        "import os\n"
        "from os import getenv\n"
        "a = os.environ['X']\n"
        "b = os.getenv('Y')\n"
        "c = os.path.join('environ', 'getenv')\n"
    )
    assert environment_reads(source) == [2, 3, 4]
