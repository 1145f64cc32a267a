"""The tests' fake model server is the one outlast ships: :mod:`outlast.testing.model`.

Re-exported here, where the tests and benchmarks import it from (``from fake_model import
FakeModel, Text, ToolCall``; ``python tests/support/fake_model.py --port P --deltas N``).
"""

from __future__ import annotations

from outlast.testing.model import (
    ChatStream,
    Delay,
    Fail,
    FakeModel,
    Recorded,
    ResponsesStream,
    Step,
    Text,
    Thinking,
    ToolCall,
    Turn,
    chat_completion,
    main,
    offline_turn,
)

__all__ = [
    "ChatStream", "Delay", "Fail", "FakeModel", "Recorded", "ResponsesStream", "Step", "Text",
    "Thinking", "ToolCall", "Turn", "chat_completion", "main", "offline_turn",
]  # fmt: skip

if __name__ == "__main__":
    main()
