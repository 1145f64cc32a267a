"""Talk to an outlast agent over A2A with a2a-sdk's client, drop the stream, resume it exactly.

    make serve                      # in another terminal (A2A is on when the a2a extra is in)
    .venv/bin/python examples/a2a_resume.py

It reads the agent card, streams a ~10 s task of the demo agent, closes the connection part way,
and subscribes again with ``Last-Event-ID`` set to the sequence number of the last event it saw
(every outlast event carries it in ``metadata.sequence_number``): it gets the task as of that
event, then every later event once. Then it sends a follow-up in the same context.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid

import httpx
from a2a.client import A2ACardResolver, ClientCallContext, ClientConfig, ClientFactory
from a2a.types import (
    Message,
    Part,
    Role,
    SendMessageRequest,
    StreamResponse,
    SubscribeToTaskRequest,
)
from google.protobuf.json_format import MessageToDict

# OUTLAST_URL is the server's address, as for the `outlast` command (a trailing /v1 is ignored).
BASE_URL = os.environ.get("OUTLAST_URL", "http://127.0.0.1:8000").rstrip("/").removesuffix("/v1")


def sequence(event: StreamResponse) -> int:
    payload = getattr(event, event.WhichOneof("payload"))
    return int(MessageToDict(payload.metadata)["sequence_number"])


def text_of(event: StreamResponse) -> str:
    if event.HasField("artifact_update"):
        return "".join(part.text for part in event.artifact_update.artifact.parts)
    return ""


async def main() -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        card = await A2ACardResolver(http, BASE_URL).get_agent_card()
        print(f"{card.name}: {card.description}")
        client = ClientFactory(ClientConfig(httpx_client=http)).create(card)

        message = Message(
            message_id=str(uuid.uuid4()),
            role=Role.ROLE_USER,
            parts=[Part(text="steps=10 delay=1 resumable streams")],
        )
        task_id, context_id, last, text = "", "", -1, []
        stream = client.send_message(SendMessageRequest(message=message))
        async with contextlib.aclosing(stream):
            async for event in stream:
                if event.HasField("task"):
                    task_id, context_id = event.task.id, event.task.context_id
                text.append(text_of(event))
                last = sequence(event)
                if last >= 40:
                    break  # the connection is gone; the task goes on on the server
        print(f"dropped {task_id} after event {last}; resuming…")

        resume = ClientCallContext(service_parameters={"Last-Event-ID": str(last)})
        seen = []
        async for event in client.subscribe(SubscribeToTaskRequest(id=task_id), context=resume):
            if event.HasField("task"):
                continue  # the task as of event `last`: what we already have
            seen.append(sequence(event))
            text.append(text_of(event))
        assert seen == sorted(set(seen)) and seen[0] > last, "a gap or a duplicate"
        print(f"resumed after {last}: {len(seen)} more events, none repeated")
        print("".join(text)[-300:])

        follow_up = Message(
            message_id=str(uuid.uuid4()),
            role=Role.ROLE_USER,
            context_id=context_id,  # same context: the agent sees the first turn
            parts=[Part(text="steps=1 delay=0 and now a short recap")],
        )
        answer = []
        async for event in client.send_message(SendMessageRequest(message=follow_up)):
            answer.append(text_of(event))
        print("follow-up:", "".join(answer)[:300])
        await client.close()


if __name__ == "__main__":
    asyncio.run(main())
