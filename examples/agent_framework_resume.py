"""Agent Framework, resumed exactly: ``OutlastChatClient`` instead of ``OpenAIChatClient``.

    pip install 'outlast[agent-framework]'
    make serve                          # in another terminal
    .venv/bin/python examples/agent_framework_resume.py

Agent Framework's stock client resumes a background stream from its first event, so a caller
that resumes sees the text again. ``OutlastChatClient`` is a drop-in whose continuation tokens
carry the sequence number of the last event: ``agent.run(stream=True,
options={"continuation_token": token})`` continues right after it. Its background streams also
reconnect by themselves after a dropped connection.
"""

from __future__ import annotations

import asyncio
import json
import os

from outlast.client.agent_framework import OutlastChatClient

# OUTLAST_URL is the server's address, as for the `outlast` command (with or without /v1).
BASE_URL = (
    os.environ.get("OUTLAST_URL", "http://127.0.0.1:8000").rstrip("/").removesuffix("/v1") + "/v1"
)


def appended_text(update: object) -> str:
    """The text a streaming UI prints (the final "replace" update repeats the whole message)."""
    return "".join(
        content.text or ""
        for content in update.contents  # type: ignore[attr-defined]
        if content.type == "text" and content.merge_mode != "replace"
    )


async def main() -> None:
    agent = OutlastChatClient(model="demo", base_url=BASE_URL, api_key="any").as_agent()

    # Start a background run and stream part of it.
    token = None
    async with agent.run(
        "steps=6 delay=0.5 exact resumes", stream=True, options={"background": True}
    ) as stream:
        async for update in stream:
            print(appended_text(update), end="", flush=True)
            token = update.continuation_token or token
            if token and token["sequence_number"] >= 30:
                break
    stored = json.dumps(token)  # e.g. into a database; the process may now exit
    print(f"\n\n--- stopped; token {stored} ---\n")

    # Resume from the stored token: the text goes on, nothing is repeated.
    async with agent.run(stream=True, options={"continuation_token": json.loads(stored)}) as rest:
        async for update in rest:
            print(appended_text(update), end="", flush=True)
        final = await rest.get_final_response()
    print(f"\n\n--- done: {len(final.text)} characters in all ---")


asyncio.run(main())
