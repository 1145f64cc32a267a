"""``outlast serve --agent module:attr`` picks the adapter by what the attribute is, and says in one
line what is wrong when it cannot host it (a missing framework names the extra to install)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from serverproc import TESTS_DIR, free_port


def serve(
    tmp_path: Path, agent: str, pythonpath: Sequence[Path] = ()
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in [*pythonpath, TESTS_DIR])
    cmd = [
        sys.executable, "-m", "outlast", "serve", "--port", str(free_port()),
        "--db", f"sqlite:///{tmp_path / 'outlast.db'}", "--agent", agent,
    ]  # fmt: skip
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)


def test_a_missing_framework_names_the_extra_to_install(tmp_path: Path) -> None:
    # A machine without LangGraph: importing it fails as it does when it is not installed.
    missing = tmp_path / "missing"
    missing.mkdir()
    (missing / "langgraph.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'langgraph'\", name='langgraph')\n"
    )
    (missing / "my_graph.py").write_text("from langgraph.graph import StateGraph\n")
    result = serve(tmp_path, "my_graph:graph", [missing])

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "pip install 'outlast[langgraph]'" in lines[0]


def test_an_uncompiled_langgraph_graph_is_refused_with_a_hint(tmp_path: Path) -> None:
    module = tmp_path / "uncompiled.py"
    module.write_text(
        "from langgraph.graph import MessagesState, StateGraph\n"
        "builder = StateGraph(MessagesState)\n"
    )
    result = serve(tmp_path, "uncompiled:builder", [tmp_path])

    assert result.returncode == 2
    assert "compile" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_something_that_is_no_agent_is_refused_saying_what_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "not_an_agent.py").write_text("value = 42\n")
    result = serve(tmp_path, "not_an_agent:value", [tmp_path])

    assert result.returncode == 2
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    for accepted in (
        "async generator function",
        "OpenAI Agents SDK",
        "Agent Framework",
        "LangGraph",
    ):
        assert accepted in message
