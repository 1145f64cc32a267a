"""``outlast.toml`` (or ``[tool.outlast]`` in ``pyproject.toml``, or ``--config PATH``): the
same options as the flags, under the flags' names, below the flags and the variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from outlast.cli import build_parser, settings_from
from outlast.config import OptionError, Settings

FILE = """
agent = "my_agent:agent"
api-key = ["key-a", "key-b"]
max-running = 3
run-timeout = "15m"
drain-timeout = 90
log-level = "debug"
insecure = true
no-console = true
upstream-base-url = "http://127.0.0.1:8001/v1"
"""


def parsed(*argv: str) -> Settings:
    return settings_from(build_parser().parse_args(["serve", *argv]))


@pytest.fixture(autouse=True)
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("OUTLAST_CONFIG", "OUTLAST_MAX_RUNNING", "OUTLAST_AGENT"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_outlast_toml_gives_what_the_same_flags_give(here: Path) -> None:
    by_flags = parsed(
        "--agent", "my_agent:agent", "--api-key", "key-a", "--api-key", "key-b",
        "--max-running", "3", "--run-timeout", "15m", "--drain-timeout", "90",
        "--log-level", "debug", "--insecure", "--no-console",
        "--upstream-base-url", "http://127.0.0.1:8001/v1",
    )  # fmt: skip
    (here / "outlast.toml").write_text(FILE)
    assert parsed() == by_flags
    assert by_flags != Settings()


def test_pyproject_tool_outlast_is_read_when_there_is_no_outlast_toml(here: Path) -> None:
    (here / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.outlast]\nmax-running = 7\n'
    )
    assert parsed().max_running == 7
    (here / "outlast.toml").write_text("max-running = 2\n")
    assert parsed().max_running == 2


def test_flags_then_variables_then_the_file(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (here / "outlast.toml").write_text("max-running = 3\nmax-queued = 30\n")
    monkeypatch.setenv("OUTLAST_MAX_RUNNING", "4")
    settings = parsed()
    assert (settings.max_running, settings.max_queued) == (4, 30)
    assert parsed("--max-running", "5").max_running == 5


def test_config_names_a_file_anywhere(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (here / "elsewhere.toml").write_text("max-running = 9\n")
    assert parsed("--config", str(here / "elsewhere.toml")).max_running == 9
    monkeypatch.setenv("OUTLAST_CONFIG", str(here / "elsewhere.toml"))
    assert parsed().max_running == 9


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max-runing = 3\n", "outlast.toml: unknown option 'max-runing'"),
        ("max-running = 0\n", "outlast.toml: max-running"),
        ("insecure = 1\n", "outlast.toml: insecure must be true or false"),
        ('log-level = "loud"\n', "outlast.toml: log-level must be one of"),
        ("max-running = [\n", "outlast.toml:"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_file_and_key(
    here: Path, text: str, message: str
) -> None:
    (here / "outlast.toml").write_text(text)
    with pytest.raises(OptionError, match="^" + message.replace("[", r"\[")):
        parsed()


def test_an_explicit_config_that_does_not_exist_is_an_error(here: Path) -> None:
    with pytest.raises(OptionError, match="no such file"):
        parsed("--config", str(here / "missing.toml"))
