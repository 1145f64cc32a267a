"""Continuation tokens: a short string and a JSON-able dict, and a resume that continues exactly.

A token saved by one process resumes in another process with no replay: the second process's
first event is the one after the token's, and the two processes together saw the server's log
exactly once.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from databases import TestDatabase, fresh_database
from outlast.client import ContinuationToken, InvalidToken
from serverproc import ServerProcess


@pytest.fixture
def database(tmp_path: Path) -> Iterator[TestDatabase]:
    """The client does not depend on the backend: SQLite is enough here."""
    with fresh_database("sqlite", tmp_path) as db:
        yield db


# -- the token's forms ----------------------------------------------------------------------------


def test_a_token_round_trips_through_its_string_and_its_dict() -> None:
    token = ContinuationToken("resp_0123abcd", 41)
    assert str(token) == "resp_0123abcd:41"
    assert ContinuationToken.parse(str(token)) == token
    assert token.to_dict() == {"response_id": "resp_0123abcd", "sequence_number": 41}
    assert ContinuationToken.from_dict(json.loads(json.dumps(token.to_dict()))) == token
    assert ContinuationToken.of(token) is token
    assert ContinuationToken.of("resp_0123abcd:41") == token
    assert ContinuationToken.of({"response_id": "resp_0123abcd", "sequence_number": 41}) == token


def test_a_bare_response_id_is_a_token_from_the_start() -> None:
    token = ContinuationToken.parse("resp_0123abcd")
    assert token == ContinuationToken("resp_0123abcd", -1)
    assert token.starting_after is None
    assert str(token) == "resp_0123abcd:-1"
    assert ContinuationToken.parse("resp_0123abcd:-1") == token
    # An Agent Framework token (``{"response_id"}`` only) reads the same way.
    assert ContinuationToken.from_dict({"response_id": "resp_0123abcd"}) == token


def test_after_moves_the_token_to_a_later_event() -> None:
    token = ContinuationToken("resp_x").after(0)
    assert token.starting_after == 0
    assert token.after(9) == ContinuationToken("resp_x", 9)


@pytest.mark.parametrize(
    "bad",
    ["", "has space:3", "resp_x:-2", {"sequence_number": 3}, {"response_id": 5}, 42],
)
def test_a_malformed_token_is_invalid_token(bad: Any) -> None:
    with pytest.raises(InvalidToken):
        ContinuationToken.of(bad)


@pytest.mark.parametrize("sequence_number", [-5, True, 1.5, "3"])
def test_a_bad_sequence_number_is_invalid_token(sequence_number: Any) -> None:
    with pytest.raises(InvalidToken):
        ContinuationToken("resp_x", sequence_number)


def test_invalid_token_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        ContinuationToken.parse("not a token")


# -- across processes -----------------------------------------------------------------------------

# Process one: start a run, read part of its stream, print the token (both forms) and what it
# read, and exit abruptly, as a crashing worker would.
FIRST = """
import json, os, sys
from outlast.client import OutlastClient
client = OutlastClient(base_url=sys.argv[1], api_key="test-key")
stream = client.stream(model="count", input="n=60 delay=0.01")
seen = []
for event in stream:
    seen.append(event.to_dict())
    if len(seen) == int(sys.argv[2]):
        break
print(json.dumps({"string": str(stream.token), "dict": stream.token.to_dict(), "seen": seen}))
sys.stdout.flush()
os._exit(0)
"""

# Process two: resume from a token given as text (its string form, or its dict as JSON).
SECOND = """
import json, sys
from outlast.client import ContinuationToken, OutlastClient
text = sys.argv[2]
token = ContinuationToken.from_dict(json.loads(text)) if text.startswith("{") else text
client = OutlastClient(base_url=sys.argv[1], api_key="test-key")
print(json.dumps([event.to_dict() for event in client.resume(token)]))
"""


def python(script: str, *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("form", ["string", "dict"])
def test_a_token_saved_in_one_process_resumes_in_another_without_replay(
    server: ServerProcess, form: str
) -> None:
    first = python(FIRST, server.base_url, "25")
    token = first[form] if form == "string" else json.dumps(first[form])
    rest = python(SECOND, server.base_url, token)
    seen = first["seen"]
    assert len(seen) == 25
    assert rest[0]["sequence_number"] == seen[-1]["sequence_number"] + 1 == 25
    with server.client() as direct:
        log = [
            e.to_dict() for e in direct.responses.retrieve(seen[0]["response"]["id"], stream=True)
        ]
    assert seen + rest == log
    text = "".join(e["delta"] for e in seen + rest if e["type"] == "response.output_text.delta")
    assert text == "".join(f"{i} " for i in range(60))
