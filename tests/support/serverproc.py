"""A real ``outlast serve`` process on a random loopback port, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from openai import AsyncOpenAI, OpenAI

TESTS_DIR = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """Starts, stops and kills one server; restartable on the same port and database."""

    def __init__(
        self,
        db: Path | str,
        agent: str = "outlast.agents.demo:agent",
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        port: int | None = None,
        log_dir: Path | None = None,
    ) -> None:
        """``db``: an SQLite file's path, or a database URL."""
        self.db_url = f"sqlite:///{db}" if isinstance(db, Path) else db
        self.agent = agent
        self.args = list(args)
        self.env = env or {}
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        if log_dir is None:
            log_dir = db.parent if isinstance(db, Path) else Path(tempfile.gettempdir())
        self.log_path = log_dir / f"outlast.{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def start(self, timeout: float = 20.0) -> ServerProcess:
        env = dict(os.environ)
        # tests/support/ on the path, so that test agents (tests/support/scripted_agents.py) can be hosted.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), env.get("PYTHONPATH")]))
        env.pop("OUTLAST_API_KEYS", None)
        env.update(self.env)
        cmd = [
            sys.executable, "-m", "outlast", "serve",
            "--port", str(self.port),
            "--db", self.db_url,
            "--agent", self.agent,
            *self.args,
        ]  # fmt: skip
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child process owns it
        self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not become healthy:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig`` and wait for the process to exit; returns its exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up."""
        self.stop(signal.SIGKILL)

    def client(self, api_key: str = "test-key", **kwargs: object) -> OpenAI:
        return OpenAI(
            base_url=self.base_url,
            api_key=api_key,
            _strict_response_validation=True,
            max_retries=0,
            **kwargs,  # type: ignore[arg-type]
        )

    def async_client(self, api_key: str = "test-key", **kwargs: object) -> AsyncOpenAI:
        return AsyncOpenAI(
            base_url=self.base_url,
            api_key=api_key,
            _strict_response_validation=True,
            max_retries=0,
            **kwargs,  # type: ignore[arg-type]
        )
