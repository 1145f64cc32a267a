"""One typed settings object, built in one place (the CLI) from flags and environment variables."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_DB = "sqlite:///./var/outlast.db"
DEFAULT_AGENT = "outlast.agents.demo:agent"


@dataclass(slots=True)
class A2ASettings:
    """The A2A transport (:mod:`outlast.a2a`): whether it is served, and its agent card."""

    enabled: str = "auto"
    """``auto``: served when the ``a2a`` extra is installed; ``on``: required; ``off``: never."""
    name: str | None = None
    """The agent card's name (default: the ``--agent`` spec)."""
    description: str | None = None
    """The agent card's description (default: the agent's docstring)."""
    skills: list[str] = field(default_factory=list)
    """``--a2a-skill`` values: ``"Name: description"``, a JSON object or a JSON array of them."""
    url: str | None = None
    """The public base URL the agent card advertises (default ``http://host:port``)."""
    db: str | None = None
    """Database URL of the A2A tables (default: a sibling SQLite file, or the same PostgreSQL)."""
    allow_private_push: bool = False
    """Accept push-notification URLs on loopback and private addresses (refused by default)."""


@dataclass(slots=True)
class ObserveSettings:
    """Metrics, traces and webhooks (:mod:`outlast.observe`)."""

    metrics: bool = True
    """Serve Prometheus metrics at ``/metrics``."""
    webhooks: list[str] = field(default_factory=list)
    """Endpoints POSTed to when a background response ends."""
    webhook_secret: str | None = None
    """The signing secret (``whsec_…`` base64, as OpenAI issues them, or any string)."""
    webhook_retry_period: float = 72 * 3600.0
    """How long failed deliveries are retried (exponential backoff), from the event."""
    webhook_concurrency: int = 8
    """Deliveries in flight at once per endpoint, per replica."""
    webhook_timeout: float = 10.0
    """Seconds one delivery attempt may take."""


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
    retention_interval: float = 60.0
    """Seconds between retention sweeps (one replica at a time sweeps a shared database)."""
    api_keys: list[str] = field(default_factory=list)
    insecure: bool = False
    drain_timeout: float = 30.0
    """On SIGTERM, seconds running runs get to finish before they are ended ``failed``."""
    max_body_bytes: int = 16 * 1024 * 1024
    sqlite_synchronous: str = "FULL"
    role: str = "both"
    """``both`` serves HTTP and executes runs; ``api`` only serves; ``worker`` only executes."""
    lease_seconds: float = 10.0
    """On a shared database: how long a silent replica keeps its runs before others end them."""
    db_pool_size: int = 10
    """Connections per replica to a PostgreSQL database."""
    max_attempts: int | None = None
    """Attempts a run gets when the replica executing it dies (default: what the agent says)."""
    log_level: str = "info"
    a2a: A2ASettings = field(default_factory=A2ASettings)
    observe: ObserveSettings = field(default_factory=lambda: ObserveSettings())
