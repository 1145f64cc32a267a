"""``outlast serve`` as a user starts it: the console script, its signals and its logs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CONSOLE_SCRIPT = Path(sys.executable).parent / "outlast"


def environment() -> dict[str, str]:
    """The caller's environment without outlast's variables or a PYTHONPATH that would hide the bug."""
    return {
        k: v for k, v in os.environ.items() if not k.startswith("OUTLAST_") and k != "PYTHONPATH"
    }


def test_the_console_script_imports_the_agent_module_from_the_current_directory(
    tmp_path: Path,
) -> None:
    # Not an agent, so that serve stops right after importing it: the error says what it found.
    (tmp_path / "mymod.py").write_text("agent = 42\n")
    done = subprocess.run(
        [
            str(CONSOLE_SCRIPT),
            "serve",
            "--agent",
            "mymod:agent",
            "--db",
            f"sqlite:///{tmp_path}/db",
        ],
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "No module named" not in done.stderr
    assert "mymod:agent is a int, not an agent" in done.stderr
