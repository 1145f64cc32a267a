"""Agents with their own compaction, for the compact endpoint's tests.

``agent`` summarises a conversation into one assistant message naming how many items it had
(``model="broken"``: its compaction raises, and outlast falls back to its lossless item); as an
agent it streams the JSON of the input it was given, as ``scripted_agents:context`` does.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from outlast import AgentOutput, AgentRequest, compact_with


async def summarise(request: AgentRequest) -> Mapping[str, Any]:
    if request.model == "broken":
        raise RuntimeError("the summariser is down")
    texts = [
        part.get("text", "")
        for item in request.input
        for part in item.get("content") or []
        if isinstance(part, dict)
    ]
    summary = f"Summary of {len(request.input)} items: " + " / ".join(texts)
    return {
        "output": [
            {
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": summary, "annotations": []}],
            }
        ],
        "usage": {"input_tokens": 40, "output_tokens": 8, "total_tokens": 48},
    }


@compact_with(summarise)
async def agent(request: AgentRequest) -> AsyncIterator[AgentOutput]:
    yield json.dumps({"input": list(request.input)})
