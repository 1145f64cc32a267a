"""One typed settings object, built in one place (the CLI) from flags and environment variables."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_DB = "sqlite:///./var/outlast.db"
DEFAULT_AGENT = "outlast.agents.demo:agent"


@dataclass(slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    db: str = DEFAULT_DB
    agent: str = DEFAULT_AGENT
    max_running: int = 1000
    """Runs executing at once; more wait as ``queued``."""
    max_queued: int = 10_000
    """Runs waiting at once; beyond it creating a run answers 429."""
    run_timeout: float = 3600.0
    """Seconds a run may execute (from when it starts) before it ends ``failed``."""
    retention: float = 7 * 24 * 3600.0
    """Seconds a response is kept after it ends."""
    api_keys: list[str] = field(default_factory=list)
    insecure: bool = False
    drain_timeout: float = 30.0
    """On SIGTERM, seconds running runs get to finish before they are ended ``failed``."""
    max_body_bytes: int = 16 * 1024 * 1024
    sqlite_synchronous: str = "FULL"
    log_level: str = "info"
