"""The README's "your own agent" example, as it is written there: ten lines that serve.

The code block is taken from README.md itself, so the example cannot go stale: it is written to
``my_agent.py`` and served with ``--agent my_agent:agent``, as the README says to.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from inprocess import InProcessServer

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_agent() -> str:
    """The README's Python block that starts with ``# my_agent.py``."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    return next(block for block in blocks if block.startswith("# my_agent.py\n"))


def test_the_readme_agent_is_ten_lines() -> None:
    assert len(readme_agent().splitlines()) <= 10


def test_the_readme_agent_serves_its_tool_call_its_output_and_its_text(
    make_server: Callable[..., InProcessServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "my_agent.py").write_text(readme_agent())
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_agent", raising=False)
    server = make_server(agent="my_agent:agent")

    with server.client() as client:
        response = client.responses.create(model="demo", input="outlast")

    assert response.status == "completed"
    call, output, message = response.output
    assert call.type == "function_call" and call.name == "search"
    assert json.loads(call.arguments) == {"q": "outlast"}
    assert output.type == "function_call_output" and output.call_id == call.call_id
    assert response.output_text == "Here is what I found: 42 results"
    assert message.type == "message"
