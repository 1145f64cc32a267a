"""The client commands through plain pipes, as a script would use them.

``outlast run`` prints the agent's text and nothing else on stdout (notes go to stderr), resumes
by itself after a dropped connection and says so on stderr; ``--detach`` prints the id. ``tail``,
``get``, ``cancel`` and ``ls`` do what their names say. Exit codes: 0 done, 1 the run did not
complete or does not exist, 2 the server is unreachable or refused the request.
(tests/e2e/test_cli_pty.py drives ``run`` in a terminal.)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI
from openai.types.responses import Response

from databases import TestDatabase, fresh_database
from faultproxy import Cut, Fault, FaultProxy
from helpers import wait_until
from serverproc import ServerProcess, free_port


@pytest.fixture
def database(tmp_path: Path) -> Iterator[TestDatabase]:
    """The commands do not depend on the backend: SQLite is enough here."""
    with fresh_database("sqlite", tmp_path) as db:
        yield db


@pytest.fixture(scope="module")
def module_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDatabase]:
    """The module's shared server is on SQLite too; its tests assert only on their own runs."""
    with fresh_database("sqlite", tmp_path_factory.mktemp("sqlite")) as db:
        yield db


def outlast(
    *args: str, url: str | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OUTLAST_")}
    if url is not None:
        environment["OUTLAST_URL"] = url
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "outlast", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def count_text(n: int) -> str:
    return "".join(f"{i} " for i in range(n))


def event_types(server: ServerProcess, response_id: str) -> Iterator[str]:
    with server.client() as direct:
        yield from (e.type for e in direct.responses.retrieve(response_id, stream=True))


def log_text(server: ServerProcess, response_id: str, first: int = 0) -> str:
    """The text of a response's events from sequence number ``first`` on."""
    with server.client() as direct:
        return "".join(
            e.delta
            for e in direct.responses.retrieve(response_id, stream=True)
            if e.type == "response.output_text.delta" and e.sequence_number >= first
        )


FINAL_LINE = re.compile(r"(resp_[0-9a-f]{48}) (\w+)(.*?) · ([0-9.]+s · )?(\d+) events\Z")


def final_line(stderr: str) -> re.Match[str]:
    """The last line of stderr, which says how a followed run ended."""
    match = FINAL_LINE.fullmatch(stderr.splitlines()[-1])
    assert match is not None, stderr
    return match


def test_run_prints_the_agents_text_and_nothing_else(shared_server: ServerProcess) -> None:
    done = outlast("run", "--agent-model", "count", "n=25 delay=0.005", url=shared_server.url)
    assert done.returncode == 0, done.stderr
    assert done.stdout == count_text(25) + "\n"
    # stderr holds one line: the id, how the run ended, how long it took, how many events.
    assert len(done.stderr.splitlines()) == 1
    ended = final_line(done.stderr)
    assert ended.group(2) == "completed" and ended.group(4) is not None
    # created, queued, in_progress, item and part added, 25 deltas, text/part/item done, completed
    assert int(ended.group(5)) == len(list(event_types(shared_server, ended.group(1))))


def test_run_shows_each_message_as_its_own_paragraph(shared_server: ServerProcess) -> None:
    done = outlast("run", "--agent-model", "tools", "weather", url=shared_server.url)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "It is 21 °C in Paris.\n\nA second message.\n"


def test_run_of_a_failing_agent_says_why_and_exits_1(shared_server: ServerProcess) -> None:
    done = outlast("run", "--agent-model", "fail", "the disk is full", url=shared_server.url)
    assert done.returncode == 1
    assert done.stdout == "partial \n"
    assert final_line(done.stderr).group(2, 3) == ("failed", ": the disk is full")


def test_run_resumes_by_itself_after_dropped_connections_and_says_so(
    shared_server: ServerProcess,
) -> None:
    cuts = iter([Cut(3000), Cut(1200, reset=True), Cut(2500)])

    def plan(number: int, request_line: str) -> Fault | None:
        # `run` first checks that the server is there at all (GET /healthz): not a stream.
        return None if "/healthz" in request_line else next(cuts, None)

    with FaultProxy(shared_server.port, plan) as proxy:
        done = outlast("run", "--agent-model", "count", "n=120 delay=0.01", url=proxy.url)
    assert done.returncode == 0, done.stderr
    assert done.stdout == count_text(120) + "\n"
    *notes, last = done.stderr.splitlines()
    assert final_line(last).group(2) == "completed"
    assert len(notes) == 3
    assert all("connection lost" in line and "resuming after event" in line for line in notes)


def test_detach_prints_the_id_and_tail_follows_the_run(shared_server: ServerProcess) -> None:
    started = outlast(
        "run", "--agent-model", "count", "n=40 delay=0.01", "--detach", url=shared_server.url
    )
    assert started.returncode == 0, started.stderr
    response_id = started.stdout.strip()
    assert response_id.startswith("resp_") and started.stdout == response_id + "\n"
    tailed = outlast("tail", response_id, url=shared_server.url)
    assert tailed.returncode == 0, tailed.stderr
    assert tailed.stdout == count_text(40) + "\n"
    assert final_line(tailed.stderr).group(1, 2) == (response_id, "completed")
    # --from N starts at event N: created, queued, in_progress, item and part added, then text.
    from_ten = outlast("tail", response_id, "--from", "10", url=shared_server.url)
    assert from_ten.stdout == log_text(shared_server, response_id, first=10) + "\n"
    assert from_ten.stdout == "".join(f"{i} " for i in range(5, 40)) + "\n"
    # A continuation token (id:N) continues after event N.
    as_token = outlast("tail", f"{response_id}:9", url=shared_server.url)
    assert as_token.stdout == from_ten.stdout


def test_get_shows_a_response_and_its_json(shared_server: ServerProcess) -> None:
    started = outlast(
        "run", "--agent-model", "echo", "hello there", "--detach", url=shared_server.url
    )
    response_id = started.stdout.strip()
    outlast("tail", response_id, url=shared_server.url)
    shown = outlast("get", response_id, url=shared_server.url)
    assert shown.returncode == 0, shown.stderr
    fields = dict(line.split("\t", 1) for line in shown.stdout.splitlines() if "\t" in line)
    assert fields["id"] == response_id
    assert fields["status"] == "completed"
    assert fields["model"] == "echo"
    assert shown.stdout.endswith("\nhello there\n")
    as_json = outlast("get", response_id, "--json", url=shared_server.url)
    response = Response.model_validate_json(as_json.stdout)
    assert response.id == response_id and response.output_text == "hello there"


def test_cancel_stops_a_running_run(shared_server: ServerProcess) -> None:
    started = outlast("run", "--agent-model", "block", "hold", "--detach", url=shared_server.url)
    response_id = started.stdout.strip()
    with shared_server.client() as direct:
        wait_until(
            lambda: direct.responses.retrieve(response_id).status == "in_progress", "it runs"
        )
        cancelled = outlast("cancel", response_id, url=shared_server.url)
        assert cancelled.returncode == 0, cancelled.stderr
        assert cancelled.stdout == f"{response_id} cancelled\n"
        assert direct.responses.retrieve(response_id).status == "cancelled"
    again = outlast("cancel", response_id, url=shared_server.url)
    assert again.stdout == f"{response_id} had already ended: cancelled\n"
    tailed = outlast("tail", response_id, url=shared_server.url)
    assert tailed.returncode == 1
    assert final_line(tailed.stderr).group(1, 2) == (response_id, "cancelled")


def test_ls_lists_recent_runs_newest_first(shared_server: ServerProcess) -> None:
    ids = []
    for model, prompt in [("echo", "first run here"), ("fail", "oops"), ("echo", "third run")]:
        done = outlast("run", "--agent-model", model, prompt, "--detach", url=shared_server.url)
        ids.append(done.stdout.strip())
        outlast("tail", ids[-1], url=shared_server.url)
    listed = outlast("ls", url=shared_server.url)
    assert listed.returncode == 0, listed.stderr
    header, *rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert header == ["ID", "STATUS", "CREATED", "DURATION", "MODEL", "OUTPUT"]
    # The server is the module's: older rows are other tests' runs, listed after these three.
    rows = rows[:3]
    assert [row[0] for row in rows] == ids[::-1]
    assert [row[1] for row in rows] == ["completed", "failed", "completed"]
    assert [row[4] for row in rows] == ["echo", "fail", "echo"]
    # Each has its duration, the failed one too (its response object has no completed_at).
    assert all(re.fullmatch(r"\d+s", row[3]) for row in rows), rows
    # What each run wrote, or for a failed one its error.
    assert [row[5] for row in rows] == ["third run", "oops", "first run here"]
    only_failed = outlast("ls", "--status", "failed", "--limit", "1", url=shared_server.url)
    assert [line.split("\t")[0] for line in only_failed.stdout.splitlines()[1:]] == [ids[1]]
    newest = outlast("ls", "--limit", "1", url=shared_server.url)
    assert len(newest.stdout.splitlines()) == 2


def test_bad_arguments_are_usage_errors(shared_server: ServerProcess) -> None:
    for args in (["ls", "--limit", "0"], ["ls", "--status", "done"], ["tail", "x", "--from", "-1"]):
        done = outlast(*args, url=shared_server.url)
        assert done.returncode == 2, args
        assert "usage:" in done.stderr


def test_an_unknown_id_exits_1_and_an_unreachable_server_exits_2(
    shared_server: ServerProcess,
) -> None:
    missing = outlast("get", "resp_nope", url=shared_server.url)
    assert missing.returncode == 1
    assert "no response resp_nope" in missing.stderr
    down = outlast("ls", url=f"http://127.0.0.1:{free_port()}")
    assert down.returncode == 2
    assert "cannot reach" in down.stderr


def test_the_url_and_key_come_from_flags_or_the_environment(make_server: Any) -> None:
    server = make_server(agent="scripted_agents:router", args=["--api-key", "sesame"]).start()
    refused = outlast("ls", url=server.url)
    assert refused.returncode == 2
    assert "401" in refused.stderr
    by_env = outlast("ls", url=server.url, env={"OUTLAST_API_KEY": "sesame"})
    assert by_env.returncode == 0, by_env.stderr
    by_flag = outlast("ls", "--url", server.url + "/v1", "--api-key", "sesame")
    assert by_flag.returncode == 0, by_flag.stderr
    assert by_flag.stdout == by_env.stdout


def test_ids_are_never_cut_and_a_unique_prefix_stands_for_the_whole_id(
    shared_server: ServerProcess, shared_client: OpenAI
) -> None:
    # 17 ids: two of them start with the same hex digit, whatever the random ids are. Created
    # through the API: what is tested is how the commands print and take ids.
    ids = []
    for i in range(17):
        created = shared_client.responses.create(model="echo", input=f"run {i}", background=True)
        ids.append(created.id)
    wait_until(
        lambda: all(shared_client.responses.retrieve(i).status == "completed" for i in ids),
        "the 17 runs have completed",
    )
    listed = outlast("ls", "--limit", "17", url=shared_server.url)
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()[1:]] == ids[::-1]
    # The shortest prefix that names ids[0] alone among this key's responses.
    others = [
        r.split("\t")[0]
        for r in outlast("ls", "--limit", "100", url=shared_server.url).stdout.splitlines()[1:]
    ]
    length = next(
        n for n in range(6, 54) if sum(other.startswith(ids[0][:n]) for other in others) == 1
    )
    short = ids[0][:length]
    tailed = outlast("tail", short, url=shared_server.url)
    assert tailed.returncode == 0, tailed.stderr
    assert tailed.stdout == "run 0\n"
    shown = outlast("get", short.removeprefix("resp_"), url=shared_server.url)
    assert shown.returncode == 0, shown.stderr
    assert f"id\t{ids[0]}\n" in shown.stdout
    assert outlast("cancel", short, url=shared_server.url).stdout.startswith(ids[0])
    first_digits = [i[5] for i in ids]
    shared = next(d for d in first_digits if first_digits.count(d) > 1)
    ambiguous = outlast("get", f"resp_{shared}", url=shared_server.url)
    assert ambiguous.returncode == 2
    assert "is the start of more than one response" in ambiguous.stderr


def test_ls_asks_the_server_once_whatever_the_number_of_rows(make_server: Any) -> None:
    server = make_server(agent="scripted_agents:router", args=["--access-log"]).start()
    for i in range(5):
        outlast("run", "--agent-model", "echo", f"run {i}", url=server.url)
    before = server.log().count('"GET /v1/')
    listed = outlast("ls", url=server.url)
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 6
    assert server.log().count('"GET /v1/') - before == 1


def test_the_url_may_come_before_the_command(shared_server: ServerProcess) -> None:
    before = outlast("--url", shared_server.url, "ls", "--limit", "1")
    assert before.returncode == 0, before.stderr
    after = outlast("ls", "--limit", "1", "--url", shared_server.url)
    assert after.stdout == before.stdout


def test_run_and_tail_against_no_server_fail_at_once_with_exit_2() -> None:
    # The client retries a create for minutes when a server answers badly; none answering at
    # all is said within seconds (the subprocess's timeout is the bound, far below minutes).
    nowhere = f"http://127.0.0.1:{free_port()}"
    for args in (["run", "hello"], ["run", "hello", "--detach"], ["tail", "resp_" + "0" * 48]):
        done = outlast(*args, url=nowhere, timeout=30)
        assert done.returncode == 2, args
        assert f"cannot reach {nowhere}" in done.stderr
        assert done.stdout == ""


def test_a_reader_that_goes_away_gets_no_traceback(shared_server: ServerProcess) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OUTLAST_")}
    environment["OUTLAST_URL"] = shared_server.url
    for command in ("run --agent-model count 'n=3000'", "ls --limit 100"):
        piped = subprocess.run(
            f"{sys.executable} -m outlast {command} | head -c 3",
            shell=True,
            capture_output=True,
            text=True,
            env=environment,
            timeout=60,
        )
        assert len(piped.stdout) == 3
        assert "Traceback" not in piped.stderr and "BrokenPipe" not in piped.stderr, piped.stderr


def test_get_shows_each_message_as_its_own_paragraph(shared_server: ServerProcess) -> None:
    started = outlast("run", "--agent-model", "tools", "weather", "--detach", url=shared_server.url)
    response_id = started.stdout.strip()
    outlast("tail", response_id, url=shared_server.url)
    shown = outlast("get", response_id, url=shared_server.url)
    assert shown.stdout.endswith("\n\nIt is 21 °C in Paris.\n\nA second message.\n")


def test_run_takes_instructions_a_previous_response_and_input_from_stdin(
    shared_server: ServerProcess,
) -> None:
    first = outlast("run", "--agent-model", "echo", "first turn", "--detach", url=shared_server.url)
    first_id = first.stdout.strip()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OUTLAST_")}
    environment["OUTLAST_URL"] = shared_server.url
    args = ["--agent-model", "context", "--instructions", "be brief", "--previous", first_id[:20]]
    done = subprocess.run(
        [sys.executable, "-m", "outlast", "run", *args],
        input="what did I say?\n",
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["input_text"] == "what did I say?"
    assert seen["instructions"] == "be brief"
    assert seen["previous_response_id"] == first_id
    assert "first turn" in json.dumps(seen["input"])


def test_run_json_prints_every_event_as_one_line(shared_server: ServerProcess) -> None:
    done = outlast("run", "--agent-model", "count", "n=3", "--json", url=shared_server.url)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    response_id = events[0]["response"]["id"]
    assert [e["type"] for e in events] == list(event_types(shared_server, response_id))
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert (
        "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == "0 1 2 "
    )
    assert final_line(done.stderr).group(1, 2) == (response_id, "completed")
