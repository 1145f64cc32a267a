"""The server's options, declared once, and the typed settings built from them.

:data:`OPTIONS` is the one table of every server option: its flag, its ``OUTLAST_*`` environment
variable, how its text is parsed, its default and its help. The command line's parser
(:func:`add_arguments`), the environment (:func:`settings_from`, the one place that reads it), the
defaults of :class:`Settings` and the documentation page (``scripts/gen_config_docs.py`` writes
``docs/configuration.md``) are all built from it, so nothing about an option is written twice.
A flag wins over its environment variable, which wins over the default. How one option is
declared and parsed (:class:`Option`, the value parsers) is :mod:`outlast.options`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

# The option machinery, under the names this module has always had.
from outlast.options import (
    FALSE,
    TRUE,
    Kind,
    Option,
    OptionError,
    boolean,
    duration,
    help_text,
    integer,
    non_negative_int,
    positive_int,
    text,
)
from outlast.shares import KeyLimit, parse_key_limit

__all__ = [
    "FALSE", "OPTIONS", "OPTIONS_BY_DEST", "TRUE", "A2ASettings", "Kind", "ObserveSettings",
    "Option", "OptionError", "Settings", "UpstreamSettings", "add_arguments", "boolean",
    "duration", "field_names", "help_text", "integer", "non_negative_int", "options_for",
    "positive_int",
    "settings_from", "text",
]  # fmt: skip

DEFAULT_DB = "sqlite:///./var/outlast.db"
DEFAULT_AGENT = "outlast.agents.demo:agent"

# -- the table -------------------------------------------------------------------------------

SERVER = "Server"
RUNS = "Runs"
REPLICAS = "PostgreSQL replicas"
A2A = "A2A (Agent2Agent) transport"
OBSERVE = "Metrics and webhooks"
UPSTREAM = "The upstream model agent"
LIMITS = "Limits"

OPTIONS: tuple[Option, ...] = (
    # -- the server ------------------------------------------------------------------------
    Option("host", "--host", "OUTLAST_HOST", "address to bind", SERVER, default="127.0.0.1",
           details="Without API keys, a non-loopback address is refused unless `--insecure`."),
    Option("port", "--port", "OUTLAST_PORT", "port", SERVER, default=8000, parse=integer),
    Option("db", "--db", "OUTLAST_DATABASE_URL", "database URL", SERVER, default=DEFAULT_DB,
           commands=("serve", "db upgrade"),
           details="`sqlite:///relative`, `sqlite:////absolute/path`, or "
                   "`postgresql://user@host:5432/db` ([many replicas](replicas.md))."),
    Option("agent", "--agent", "OUTLAST_AGENT", "the agent, as module:attribute", SERVER,
           default=DEFAULT_AGENT, default_text="the demo agent",
           details="An async generator function or a framework's agent ([Agents](agents.md)); "
                   f"the demo agent is `{DEFAULT_AGENT}`."),
    Option("api_keys", "--api-key", "OUTLAST_API_KEYS",
           "an accepted API key", SERVER, default=[], kind="list",
           env_note="comma-separated",
           details="With keys, `/v1/` needs `Authorization: Bearer <key>` "
                   "([auth](api.md#auth-and-isolation))."),
    Option("insecure", "--insecure", "OUTLAST_INSECURE",
           "allow binding a non-loopback address without API keys", SERVER, default=False,
           parse=boolean, kind="switch"),
    Option("max_body_bytes", "--max-body-size", "OUTLAST_MAX_BODY_SIZE",
           "largest request body in bytes", SERVER, default=16 * 1024 * 1024,
           parse=positive_int, default_text="16 MiB", details="Larger request bodies get 413."),
    Option("sqlite_synchronous", "--sqlite-synchronous", "OUTLAST_SQLITE_SYNCHRONOUS",
           "FULL survives power loss; NORMAL only process crashes", SERVER, default="FULL",
           choices=("FULL", "NORMAL"), details="See [durability](durability.md)."),
    Option("commit_delay_ms", "--commit-delay-ms", "OUTLAST_COMMIT_DELAY_MS",
           "milliseconds a commit may wait for more writes while several runs write", SERVER,
           default=25, parse=non_negative_int,
           details="Only while at least 4 runs write (pending together, or within the last "
                   "0.1 s): a commit then starts no sooner than this after the previous one "
                   "began, so each carries more events (fewer commits, less CPU per event) for "
                   "at most this much more latency. A run streaming alone never waits, nor a "
                   "write someone waits for (an insert, a journaled step, a delete); a run's "
                   "last events gather like its others. `0`: commit at once "
                   "([durability](durability.md#group-commit))."),
    Option("log_level", "--log-level", "OUTLAST_LOG_LEVEL", "how much to log", SERVER,
           default="info", choices=("debug", "info", "warning", "error"),
           details="At `info`, one log line per run state change."),
    Option("access_log", "--access-log", "OUTLAST_ACCESS_LOG", "log every HTTP request", SERVER,
           default=False, parse=boolean, kind="switch"),
    Option("websocket_connection_limit", "--websocket-connection-limit",
           "OUTLAST_WEBSOCKET_CONNECTION_LIMIT",
           "seconds a WebSocket connection on /v1/responses stays open", SERVER, default=3600.0,
           parse=duration, default_text="60m",
           details="OpenAI's limit. Then, once its responses have ended, the server sends "
                   "`websocket_connection_limit_reached` and closes it with 1001, so the SDK "
                   "reconnects ([WebSocket mode](websocket.md))."),
    Option("max_pending_steers", "--max-pending-steers", "OUTLAST_MAX_PENDING_STEERS",
           "steering inputs queued for one response at once", RUNS, default=16,
           parse=positive_int,
           details="More get `response.steer.failed` with `too_many_pending_steers` "
                   "([steering](websocket.md#steering))."),
    Option("log_format", "--log-format", "OUTLAST_LOG_FORMAT", "text, or one JSON object a line",
           SERVER, default="text", choices=("text", "json"),
           details="outlast's lines and uvicorn's in one format; a line logged for an HTTP "
                   "request carries its `x-request-id` ([logging](observability.md#logging))."),
    Option("cors_origins", "--cors-origin", "OUTLAST_CORS_ORIGINS",
           "a browser origin allowed to call the API (`*`: any)", SERVER, default=[],
           kind="list", env_note="comma-separated", metavar="ORIGIN",
           details="For web pages served from another origin, e.g. `http://localhost:5173`: "
                   "their requests (and preflights) get CORS headers. Off by default."),
    Option("console", "--no-console", "OUTLAST_CONSOLE", "do not serve the web console", SERVER,
           default=True, parse=boolean, kind="switch", flag_value=False,
           default_text="console on",
           details="The [web console](console.md) at `/console` (`/` redirects to it)."),
    # -- limits ------------------------------------------------------------------------------
    Option("max_input_items", "--max-input-items", "OUTLAST_MAX_INPUT_ITEMS",
           "input items one request may carry; beyond it, 400", LIMITS, default=10_000,
           parse=positive_int,
           details="The 400's `param` is `input` and its code `array_above_max_length` "
                   "([limits](limits.md))."),
    Option("max_conversation_bytes", "--max-conversation-size", "OUTLAST_MAX_CONVERSATION_SIZE",
           "bytes of a conversation: the new input plus every earlier turn of its "
           "previous_response_id chain; beyond it, 400", LIMITS, default=16 * 1024 * 1024,
           parse=positive_int, default_text="16 MiB",
           details="Counted as stored (each turn's input items and response object). The 400's "
                   "code is `context_length_exceeded`."),
    Option("max_streams_per_key", "--max-streams-per-key", "OUTLAST_MAX_STREAMS_PER_KEY",
           "event streams one API key may hold open at once; beyond it, 429", LIMITS,
           default=5000, parse=positive_int,
           details="Per replica; SSE streams of both transports. The 429 has `Retry-After`."),
    Option("max_streams_per_response", "--max-streams-per-response",
           "OUTLAST_MAX_STREAMS_PER_RESPONSE",
           "event streams open at once on one response; beyond it, 429", LIMITS, default=100,
           parse=positive_int, details="Per replica."),
    Option("header_timeout", "--header-timeout", "OUTLAST_HEADER_TIMEOUT",
           "seconds a connection may take to send a request's headers before it is closed",
           LIMITS, default=10.0, parse=duration,
           details="Counted from the connection (or the end of the previous response): a client "
                   "that sends part of a request and stalls (slow-loris) is cut off."),
    Option("body_timeout", "--body-timeout", "OUTLAST_BODY_TIMEOUT",
           "seconds a request body may take to arrive; beyond it, 408", LIMITS, default=60.0,
           parse=duration),
    Option("keep_alive_timeout", "--keep-alive-timeout", "OUTLAST_KEEP_ALIVE_TIMEOUT",
           "seconds an idle keep-alive connection stays open", LIMITS, default=5.0,
           parse=duration, details="uvicorn's `timeout_keep_alive`."),
    Option("max_connections", "--max-connections", "OUTLAST_MAX_CONNECTIONS",
           "connections and requests served at once; beyond it, 503", LIMITS, default=10000,
           parse=positive_int,
           details="uvicorn's `limit_concurrency`: open event streams count too, so keep it "
                   "above the streams you expect."),
    Option("max_header_bytes", "--max-header-size", "OUTLAST_MAX_HEADER_SIZE",
           "bytes of a request line and headers; beyond it, 400 and the connection closed",
           LIMITS, default=16 * 1024, parse=positive_int, default_text="16 KiB"),
    # -- runs --------------------------------------------------------------------------------
    Option("max_running", "--max-running", "OUTLAST_MAX_RUNNING",
           "runs executing at once; more wait as queued", RUNS, default=1000,
           parse=positive_int,
           details="Queued runs start in turns between keys (weighted by `--key-limit`), "
                   "oldest first within a key; `background_options.completion_window` `2h`/`8h` "
                   "runs only take slots no other run waits for ([queue](api.md#per-key-shares))."),
    Option("max_queued", "--max-queued", "OUTLAST_MAX_QUEUED",
           "runs waiting at once; beyond it, 429", RUNS, default=10_000, parse=positive_int,
           details="The 429's error code is `rate_limit_exceeded`; it has `Retry-After`. Once "
                   "the queue is full, a key is refused only if it holds its fair share of it "
                   "(`--max-queued` / keys waiting): one key cannot lock the others out "
                   "([per-key shares](api.md#per-key-shares))."),
    Option("key_limits", "--key-limit", "OUTLAST_KEY_LIMITS",
           "limits of one API key ('*': every other key): "
           "'KEY running=N queued=N rate=N/s weight=N', any of them", RUNS, default=[],
           kind="list", parse=parse_key_limit, metavar="'KEY LIMITS'",
           env_note="comma-separated entries",
           details="`running`: its runs executing at once (the rest wait their turn); `queued`: "
                   "its runs waiting (beyond it, 429); `rate`: creates per second, minute or "
                   "hour (`/s`, `/m`, `/h`; beyond it, 429 with `Retry-After`); `weight`: its "
                   "share of free slots among keys with runs waiting (default 1). E.g. "
                   "`--key-limit '* queued=500 rate=20/s' --key-limit 'sk-batch running=10'` "
                   "([per-key shares](api.md#per-key-shares))."),
    Option("run_timeout", "--run-timeout", "OUTLAST_RUN_TIMEOUT",
           "seconds a run may execute before it fails", RUNS, default=3600.0, parse=duration,
           details="Counted from when it starts; past it the run ends `failed` saying so."),
    Option("drain_timeout", "--drain-timeout", "OUTLAST_DRAIN_TIMEOUT",
           "on SIGTERM, seconds runs get to finish", RUNS, default=30.0, parse=duration,
           details="On SIGTERM/SIGINT the server keeps answering (new runs get 503) while running "
                   "runs finish; those still running then end `failed`."),
    Option("max_resumes", "--max-resumes", "OUTLAST_MAX_RESUMES",
           "times a run with a journal of steps is resumed after an interruption", RUNS,
           default=3, parse=positive_int,
           details="A crash, a lost lease or a shutdown past the drain resumes such a run from "
                   "its last completed step; once more than this, it ends `failed` "
                   "([durable runs](durable-runs.md))."),
    Option("retention", "--retention", "OUTLAST_RETENTION",
           "how long responses are kept after they end", RUNS, default=7 * 86400.0,
           parse=duration, default_text="7d",
           details="Then the response and its events are deleted, and it answers 404."),
    Option("retention_interval", "--retention-interval", "OUTLAST_RETENTION_INTERVAL",
           "seconds between sweeps deleting expired responses", RUNS, default=60.0,
           parse=duration,
           details="On a shared database one replica at a time sweeps (500 at a time)."),
    # -- replicas ----------------------------------------------------------------------------
    Option("role", "--role", "OUTLAST_ROLE",
           "with PostgreSQL: serve HTTP and execute runs (both), only serve (api) or only "
           "execute (worker)", REPLICAS, default="both", choices=("both", "api", "worker"),
           details="A worker answers only `/healthz` (and `/metrics`); with SQLite one process "
                   "serves and executes."),
    Option("lease_seconds", "--lease", "OUTLAST_LEASE",
           "with PostgreSQL: seconds a replica that stops answering keeps its runs before "
           "another replica ends them", REPLICAS, default=10.0, parse=duration),
    Option("max_attempts", "--max-attempts", "OUTLAST_MAX_ATTEMPTS",
           "with PostgreSQL: attempts a run gets when its replica dies", REPLICAS,
           parse=positive_int, default_text="1, or what the agent declares with "
                                            "outlast.retry_safe",
           details="Stored with each run when it is created: the replica that takes a run "
                   "over honours the number the run was created with, not its own."),
    Option("db_pool_size", "--db-pool-size", "OUTLAST_DB_POOL_SIZE",
           "PostgreSQL connections per replica", REPLICAS, default=10, parse=positive_int,
           details="For runs and the API; a replica holds at most this many plus one for "
                   "notifications and two for A2A's task index."),
    # -- A2A ---------------------------------------------------------------------------------
    Option("a2a.enabled", "--a2a", "OUTLAST_A2A",
           "require the A2A transport", A2A, default="auto", env_note="on, off or auto",
           kind="mode", choices=("auto", "on", "off"), flag_value="on",
           negative=("off", "do not serve A2A"),
           default_text="auto: served when the a2a extra is installed"),
    Option("a2a.name", "--a2a-name", "OUTLAST_A2A_NAME", "agent card name", A2A,
           default_text="the --agent spec"),
    Option("a2a.description", "--a2a-description", "OUTLAST_A2A_DESCRIPTION",
           "agent card description", A2A, default_text="the agent's docstring",
           details="The first paragraph of the agent's docstring, by default."),
    Option("a2a.skills", "--a2a-skill", "OUTLAST_A2A_SKILLS",
           "an agent card skill, 'Name: description' or a JSON object", A2A, default=[],
           kind="list", separator=None, env_note="a JSON array", default_text="one skill named after the agent",
           details='A JSON object has `{"id", "name", "description", "tags", "examples"}`.'),
    Option("a2a.input_modes", "--a2a-input-mode", "OUTLAST_A2A_INPUT_MODES",
           "a media type the agent accepts in A2A messages (wildcards like image/* allowed)",
           A2A, default=[], kind="list", env_note="comma-separated", metavar="TYPE",
           default_text="text/plain, application/json, text/*, image/*, application/pdf",
           details="The agent card's `defaultInputModes`. A message part of any other media "
                   "type is refused with `ContentTypeNotSupportedError`; give `*/*` to hand "
                   "every file to the agent."),
    Option("a2a.url", "--a2a-url", "OUTLAST_A2A_URL",
           "public base URL advertised in the agent card", A2A, default_text="http://HOST:PORT",
           details="Set it behind a proxy."),
    Option("a2a.db", "--a2a-db", "OUTLAST_A2A_DATABASE_URL", "database URL of the A2A tables",
           A2A, default_text="beside --db",
           details="For SQLite a sibling file, for PostgreSQL the same database."),
    Option("a2a.allow_private_push", "--a2a-allow-private-push",
           "OUTLAST_A2A_ALLOW_PRIVATE_PUSH",
           "accept push-notification URLs on loopback/private addresses", A2A, default=False,
           parse=boolean, kind="switch"),
    Option("a2a.card_max_age", "--a2a-card-max-age", "OUTLAST_A2A_CARD_MAX_AGE",
           "seconds clients may cache the agent card (its Cache-Control max-age)", A2A,
           default=300.0, parse=duration,
           details="The card also carries an ETag and Last-Modified (when the server started), "
                   "and answers If-None-Match / If-Modified-Since with 304."),
    Option("a2a.grpc_port", "--a2a-grpc-port", "OUTLAST_A2A_GRPC_PORT",
           "serve A2A's gRPC binding on this loopback port too", A2A, parse=positive_int,
           default_text="off",
           details="Listens on 127.0.0.1 only (the HTTP host does not apply): put a TLS proxy "
                   "in front to expose it. Listed in the agent card when on."),
    Option("a2a.grpc_url", "--a2a-grpc-url", "OUTLAST_A2A_GRPC_URL",
           "address of the gRPC binding advertised in the agent card", A2A,
           default_text="127.0.0.1:PORT",
           details="Set it to the proxy's `host:port` when a proxy exposes the gRPC port."),
    # -- metrics and webhooks ----------------------------------------------------------------
    Option("observe.metrics", "--no-metrics", "OUTLAST_METRICS",
           "do not serve Prometheus metrics at /metrics",
           OBSERVE, default=True, parse=boolean, kind="switch", flag_value=False,
           default_text="metrics on"),
    Option("observe.webhooks", "--webhook", "OUTLAST_WEBHOOKS",
           "POST response.completed/failed/cancelled/incomplete events of background responses "
           "to this URL", OBSERVE, default=[], kind="list", metavar="URL",
           env_note="comma-separated"),
    Option("observe.webhook_secret", "--webhook-secret", "OUTLAST_WEBHOOK_SECRET",
           "the webhook signing secret, whsec_... as OpenAI issues them (required with "
           "--webhook)", OBSERVE, details="Or any string."),
    Option("observe.webhook_retry_period", "--webhook-retry-period",
           "OUTLAST_WEBHOOK_RETRY_PERIOD",
           "how long failed deliveries are retried, with exponential backoff", OBSERVE,
           default=72 * 3600.0, parse=duration, default_text="72h",
           details="Counted from the event."),
    Option("observe.webhook_concurrency", "--webhook-concurrency", "OUTLAST_WEBHOOK_CONCURRENCY",
           "deliveries in flight at once per endpoint", OBSERVE, default=8, parse=positive_int,
           details="Per replica."),
    Option("observe.webhook_timeout", "--webhook-timeout", "OUTLAST_WEBHOOK_TIMEOUT",
           "seconds one delivery attempt may take", OBSERVE, default=10.0, parse=duration),
    # -- the upstream model agent ------------------------------------------------------------
    Option("upstream.base_url", "--upstream-base-url", "OUTLAST_UPSTREAM_BASE_URL",
           "the upstream model server's /v1 URL", UPSTREAM,
           default_text="the openai SDK's: OPENAI_BASE_URL, or OpenAI",
           details="Read by `--agent outlast.agents:upstream` "
                   "([the upstream model](agents.md#the-upstream-model))."),
    Option("upstream.api_key", "--upstream-api-key", "OUTLAST_UPSTREAM_API_KEY",
           "the upstream model server's API key", UPSTREAM, env_fallbacks=("OPENAI_API_KEY",),
           default_text="OPENAI_API_KEY, else none"),
    Option("upstream.model", "--upstream-model", "OUTLAST_UPSTREAM_MODEL",
           "the upstream model to use", UPSTREAM, default_text="the model the client asked for"),
    Option("upstream.api", "--upstream-api", "OUTLAST_UPSTREAM_API",
           "the API the upstream server speaks: chat (Chat Completions) or responses", UPSTREAM,
           default="chat", parse=lambda value: value.strip().lower(),
           choices=("chat", "responses"), details="Every server has Chat Completions."),
)  # fmt: skip

OPTIONS_BY_DEST: dict[str, Option] = {option.dest: option for option in OPTIONS}


def _default(dest: str) -> Any:
    """A :class:`Settings` field's default, from the table (a list's is always empty)."""
    return OPTIONS_BY_DEST[dest].default


# -- the settings ----------------------------------------------------------------------------
# Every field's default, type of text and help are in OPTIONS above, under the same name (lists
# start empty; tests/unit/test_options.py checks each default against the table).


@dataclass(slots=True)
class A2ASettings:
    """The A2A transport (:mod:`outlast.a2a`): whether it is served, and its agent card."""

    enabled: str = _default("a2a.enabled")
    name: str | None = _default("a2a.name")
    description: str | None = _default("a2a.description")
    skills: list[str] = field(default_factory=list)
    input_modes: list[str] = field(default_factory=list)
    url: str | None = _default("a2a.url")
    db: str | None = _default("a2a.db")
    allow_private_push: bool = _default("a2a.allow_private_push")
    card_max_age: float = _default("a2a.card_max_age")
    grpc_port: int | None = _default("a2a.grpc_port")
    grpc_url: str | None = _default("a2a.grpc_url")


@dataclass(slots=True)
class ObserveSettings:
    """Metrics, traces and webhooks (:mod:`outlast.observe`)."""

    metrics: bool = _default("observe.metrics")
    webhooks: list[str] = field(default_factory=list)
    webhook_secret: str | None = _default("observe.webhook_secret")
    webhook_retry_period: float = _default("observe.webhook_retry_period")
    webhook_concurrency: int = _default("observe.webhook_concurrency")
    webhook_timeout: float = _default("observe.webhook_timeout")


@dataclass(slots=True)
class UpstreamSettings:
    """Where the upstream model agent (:mod:`outlast.agents.upstream`) sends each response."""

    base_url: str | None = _default("upstream.base_url")
    api_key: str | None = _default("upstream.api_key")
    model: str | None = _default("upstream.model")
    api: str = _default("upstream.api")


@dataclass(slots=True)
class Settings:
    """Everything ``outlast serve`` is configured with (see :data:`OPTIONS` for each field)."""

    host: str = _default("host")
    port: int = _default("port")
    db: str = _default("db")
    agent: str = _default("agent")
    max_running: int = _default("max_running")
    max_queued: int = _default("max_queued")
    key_limits: list[KeyLimit] = field(default_factory=list)
    run_timeout: float = _default("run_timeout")
    retention: float = _default("retention")
    retention_interval: float = _default("retention_interval")
    api_keys: list[str] = field(default_factory=list)
    insecure: bool = _default("insecure")
    drain_timeout: float = _default("drain_timeout")
    max_body_bytes: int = _default("max_body_bytes")
    sqlite_synchronous: str = _default("sqlite_synchronous")
    commit_delay_ms: int = _default("commit_delay_ms")
    role: str = _default("role")
    lease_seconds: float = _default("lease_seconds")
    db_pool_size: int = _default("db_pool_size")
    max_attempts: int | None = _default("max_attempts")
    max_resumes: int = _default("max_resumes")
    log_level: str = _default("log_level")
    access_log: bool = _default("access_log")
    log_format: Literal["text", "json"] = _default("log_format")
    cors_origins: list[str] = field(default_factory=list)
    console: bool = _default("console")
    websocket_connection_limit: float = _default("websocket_connection_limit")
    max_pending_steers: int = _default("max_pending_steers")
    max_input_items: int = _default("max_input_items")
    max_conversation_bytes: int = _default("max_conversation_bytes")
    max_streams_per_key: int = _default("max_streams_per_key")
    max_streams_per_response: int = _default("max_streams_per_response")
    header_timeout: float = _default("header_timeout")
    body_timeout: float = _default("body_timeout")
    keep_alive_timeout: float = _default("keep_alive_timeout")
    max_connections: int = _default("max_connections")
    max_header_bytes: int = _default("max_header_bytes")
    a2a: A2ASettings = field(default_factory=A2ASettings)
    observe: ObserveSettings = field(default_factory=ObserveSettings)
    upstream: UpstreamSettings = field(default_factory=UpstreamSettings)


# -- the command line and the environment ----------------------------------------------------


def options_for(command: str) -> tuple[Option, ...]:
    """The options ``command`` (``serve``, ``db upgrade``) takes."""
    return tuple(option for option in OPTIONS if command in option.commands)


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """Add ``command``'s options to ``parser``, in groups, as the table declares them.

    Every default is ``None`` here: :func:`settings_from` tells a flag given from one left out,
    so the environment and then the table's default fill in what the flags did not say.
    """
    groups: dict[str, Any] = {}
    for option in options_for(command):
        if option.group == SERVER:
            target: Any = parser
        else:
            target = groups.get(option.group) or groups.setdefault(
                option.group, parser.add_argument_group(option.group)
            )
        option.add_to(target)


def _set(settings: Settings, dest: str, value: Any) -> None:
    group, _, name = dest.rpartition(".")
    setattr(getattr(settings, group) if group else settings, name, value)


def settings_from(
    args: argparse.Namespace | None = None,
    environ: Mapping[str, str] | None = None,
    command: str = "serve",
    file_values: Mapping[str, Any] | None = None,
) -> Settings:
    """The settings: each option from its flag in ``args``, else its variable, else the
    configuration file's value (``file_values``, by dest: :mod:`outlast.configfile`), else its
    default.

    ``environ`` defaults to the process's environment: this is the one place outlast reads it
    for its own options. Raises :class:`OptionError` (a one-line message) for a variable that
    does not parse; flags were parsed by argparse already.
    """
    env = os.environ if environ is None else environ
    settings = Settings()
    for option in options_for(command):
        value = getattr(args, option.arg_dest, None) if args else None
        if value is None:
            value = option.from_env(env)
        if value is None and file_values is not None:
            value = file_values.get(option.dest)
        if value is not None:
            _set(settings, option.dest, value)
    return settings


def field_names() -> set[str]:
    """Every settings field, nested ones as ``group.name`` (the table must cover them all)."""
    names = {f.name for f in fields(Settings)} - {"a2a", "observe", "upstream"}
    for group, cls in (("a2a", A2ASettings), ("observe", ObserveSettings),
                       ("upstream", UpstreamSettings)):  # fmt: skip
        names |= {f"{group}.{f.name}" for f in fields(cls)}
    return names
