"""Without the ``a2a`` extra installed, asking ``outlast serve`` for A2A is a one-line error.

A process of its own: a2a-sdk is made unimportable in it, which cannot be undone in the test
process. The rest of A2A's bad input is tested in-process in tests/api/test_a2a_bad_input.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_without_the_a2a_extra_asking_for_a2a_is_a_one_line_error(tmp_path: Path) -> None:
    # a2a-sdk made unimportable, as on an installation without the extra.
    code = (
        "import sys; sys.modules['a2a'] = None; from outlast.cli import main; "
        f"main(['serve', '--a2a', '--port', '1', '--db', 'sqlite:///{tmp_path}/x.db'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "pip install 'outlast[a2a]'" in lines[0]
