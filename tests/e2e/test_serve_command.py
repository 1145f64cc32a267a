"""``outlast serve`` as a user starts it: the console script, its signals and its logs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from helpers import wait_until
from serverproc import ServerProcess

CONSOLE_SCRIPT = Path(sys.executable).parent / "outlast"


def environment() -> dict[str, str]:
    """The caller's environment without outlast's variables or a PYTHONPATH that would hide the bug."""
    return {
        k: v for k, v in os.environ.items() if not k.startswith("OUTLAST_") and k != "PYTHONPATH"
    }


def test_the_console_script_imports_the_agent_module_from_the_current_directory(
    tmp_path: Path,
) -> None:
    # Not an agent, so that serve stops right after importing it: the error says what it found.
    (tmp_path / "mymod.py").write_text("agent = 42\n")
    done = subprocess.run(
        [
            str(CONSOLE_SCRIPT),
            "serve",
            "--agent",
            "mymod:agent",
            "--db",
            f"sqlite:///{tmp_path}/db",
        ],
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "No module named" not in done.stderr
    assert "mymod:agent is a int, not an agent" in done.stderr


# -- signals ---------------------------------------------------------------------------------


def test_a_second_ctrl_c_stops_at_once_and_the_drain_line_says_it_will(tmp_path: Path) -> None:
    # A drain of an hour: only the second Ctrl-C can end this one within the test.
    server = ServerProcess(
        tmp_path / "db", agent="scripted_agents:router", args=["--drain-timeout", "3600"]
    ).start()
    with server.client() as client:
        response_id = client.responses.create(model="block", input="hold", background=True).id
        wait_until(lambda: client.responses.retrieve(response_id).status == "in_progress", "runs")
    assert server.proc is not None
    server.proc.send_signal(signal.SIGINT)
    wait_until(lambda: "Ctrl-C again stops at once" in server.log(), "the drain line")
    assert server.stop(signal.SIGINT, timeout=60) == 0
    assert "second signal: stopping now" in server.log()
    # The run it stopped has its end written, as at a drain's deadline.
    server.start()
    with server.client() as client:
        response = client.responses.retrieve(response_id)
    server.stop()
    assert response.status == "failed"
    assert response.error is not None and "shut down" in response.error.message


# -- the log ---------------------------------------------------------------------------------


def lines_of(server: ServerProcess, text: str) -> list[str]:
    return [line for line in server.log().splitlines() if text in line]


def test_one_format_for_every_line_and_each_request_s_lines_carry_its_id(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "db", agent="scripted_agents:router", args=["--access-log"]
    ).start()
    created = httpx.post(
        f"{server.url}/v1/responses",
        json={"model": "echo", "input": "hello", "background": True},
        headers={"x-request-id": "client-42"},
    )
    response_id = created.json()["id"]
    assert created.headers["x-request-id"] == "client-42"
    wait_until(lambda: lines_of(server, f"{response_id} completed"), "the run ends")
    server.stop()
    text_line = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [\w.]+: .*")
    log = [line for line in server.log().splitlines() if line.strip()]
    # uvicorn's own lines ("Started server process", "Uvicorn running on") included.
    assert any("Uvicorn running on" in line for line in log)
    assert all(text_line.fullmatch(line) for line in log), log
    access = lines_of(server, '"POST /v1/responses HTTP/1.1" 200')
    assert len(access) == 1 and access[0].endswith(" request_id=client-42")
    (created_line,) = lines_of(server, f"{response_id} created")
    assert created_line.endswith(" request_id=client-42")
    # The run's own lines outlive the request: they carry no request's id.
    (ended,) = lines_of(server, f"{response_id} completed")
    assert "request_id=" not in ended


def test_the_json_log_is_one_object_a_line(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "db", agent="scripted_agents:router", args=["--log-format", "json"]
    ).start()
    with server.client() as client:
        client.responses.create(model="fail", input="the disk is full", background=True)
    wait_until(lambda: "agent raised" in server.log(), "the failure is logged")
    server.stop()
    entries = [json.loads(line) for line in server.log().splitlines() if line.strip()]
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    raised = [e for e in entries if e["message"].endswith("agent raised")]
    assert len(raised) == 1 and "RuntimeError: the disk is full" in raised[0]["traceback"]
    assert any(e["logger"].startswith("uvicorn") for e in entries)


def test_an_agent_s_traceback_is_logged_once_and_created_comes_before_in_progress(
    tmp_path: Path,
) -> None:
    server = ServerProcess(tmp_path / "db", agent="scripted_agents:router").start()
    with server.client() as client:
        response_id = client.responses.create(
            model="fail", input="the disk is full", background=True
        ).id
        wait_until(lambda: client.responses.retrieve(response_id).status == "failed", "it fails")
    server.stop()
    log = server.log()
    assert log.count("Traceback (most recent call last)") == 1
    assert log.count("RuntimeError: the disk is full") == 1
    mine = [line.split(": ", 1)[1] for line in lines_of(server, response_id)]
    states = [line.split()[1].rstrip(",") for line in mine if line.startswith(response_id)]
    assert states == ["created", "in_progress", "agent", "failed"], mine  # "agent raised"
