"""Drop a stream on purpose and resume it exactly, with the unmodified ``openai`` SDK.

    make serve                      # in another terminal
    .venv/bin/python examples/resume.py

It starts a ~10 s background run of the demo agent, reads part of its stream, closes the
connection, and continues with ``starting_after`` from the last event it saw: no event is missed
or repeated, which the script checks.
"""

from __future__ import annotations

import os

from openai import OpenAI

# OUTLAST_URL is the server's address, as for the `outlast` command (with or without /v1).
server = os.environ.get("OUTLAST_URL", "http://127.0.0.1:8000").rstrip("/").removesuffix("/v1")
client = OpenAI(base_url=server + "/v1", api_key="any")

stream = client.responses.create(
    model="demo", input="steps=10 delay=1 resumable streams", background=True, stream=True
)
response_id, last, text = "", -1, []
for event in stream:
    if event.type == "response.created":
        response_id = event.response.id
    if event.type == "response.output_text.delta":
        text.append(event.delta)
    last = event.sequence_number
    if last >= 40:
        break
stream.close()  # the connection is gone; the run goes on on the server
print(f"dropped {response_id} after event {last}; resuming…")

seen = [last]
for event in client.responses.retrieve(response_id, stream=True, starting_after=last):
    if event.type == "response.output_text.delta":
        text.append(event.delta)
    seen.append(event.sequence_number)
assert seen == list(range(last, last + len(seen))), "a gap or a duplicate"
print(f"resumed from {last + 1} to {seen[-1]} with no gap and no duplicate")
print("".join(text)[-300:])
