"""Never lose a run: stream with outlast's client, stop anywhere, resume from a token.

    make serve                          # in another terminal
    .venv/bin/python examples/client.py

It starts a ~10 s run of the demo agent and streams it. The client reconnects by itself if the
connection drops (try restarting the server meanwhile). Halfway, the script stops reading and
keeps only the token's short string, as a worker would store it in a database; then it resumes
from that string with a fresh client: the text continues exactly where it stopped.
"""

from __future__ import annotations

import os

from outlast.client import ContinuationToken, OutlastClient, Reconnecting


def note(info: Reconnecting) -> None:
    print(f"\n[connection lost; resuming after event {info.token.sequence_number}]")


# OUTLAST_URL is the server's address, as for the `outlast` command (with or without /v1).
base_url = (
    os.environ.get("OUTLAST_URL", "http://127.0.0.1:8000").rstrip("/").removesuffix("/v1") + "/v1"
)
client = OutlastClient(base_url=base_url, api_key="any", on_reconnect=note)

stream = client.stream(model="demo", input="steps=10 delay=1 never losing a run")
saved = ""
for event in stream:
    if event.type == "response.output_text.delta":
        print(event.delta, end="", flush=True)
    elif event.type == "response.output_item.done" and event.item.type == "message":
        print()
    saved = str(stream.token)  # "resp_…:41": resumes right after this event
    if event.sequence_number >= 40:
        break
stream.close()
print(f"\n\n--- stopped; saved token {saved} ---\n")

# Later, anywhere: another process, another machine.
with OutlastClient(base_url=base_url, api_key="any") as other:
    resumed = other.resume(ContinuationToken.parse(saved))
    for event in resumed:
        if event.type == "response.output_text.delta":
            print(event.delta, end="", flush=True)
        elif event.type == "response.output_item.done" and event.item.type == "message":
            print()
    print(f"\n\n--- {resumed.result().status} ---")
