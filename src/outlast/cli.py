"""The ``outlast`` command: ``outlast serve`` hosts an agent behind the Responses API."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from outlast.client import cli as client_commands
from outlast.config import DEFAULT_AGENT, DEFAULT_DB, A2ASettings, ObserveSettings, Settings


def _duration(text: str) -> float:
    """Seconds, or a number with a unit: ``90``, ``30s``, ``15m``, ``12h``, ``7d``."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    scale = units.get(text[-1:])
    number = text[:-1] if scale else text
    try:
        value = float(number) * (scale or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a duration: {text!r} (e.g. 90, 30s, 15m, 7d)"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError("a duration must be positive")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="outlast", description="Run long-running agents behind the OpenAI Responses API."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve an agent over HTTP")
    env = os.environ.get
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--db",
        default=env("OUTLAST_DATABASE_URL", DEFAULT_DB),
        help=f"database URL (env OUTLAST_DATABASE_URL; default {DEFAULT_DB})",
    )
    serve.add_argument(
        "--agent",
        default=env("OUTLAST_AGENT", DEFAULT_AGENT),
        help="the agent, as module:attribute (env OUTLAST_AGENT; default the demo agent)",
    )
    serve.add_argument("--max-running", type=_positive_int, default=1000,
                       help="runs executing at once; more wait as queued (default 1000)")  # fmt: skip
    serve.add_argument("--max-queued", type=_positive_int, default=10_000,
                       help="runs waiting at once; beyond it, 429 (default 10000)")  # fmt: skip
    serve.add_argument("--run-timeout", type=_duration, default=3600.0,
                       help="seconds a run may execute before it fails (default 3600)")  # fmt: skip
    serve.add_argument("--retention", type=_duration, default=7 * 86400.0,
                       help="how long responses are kept after they end (default 7d)")  # fmt: skip
    serve.add_argument("--retention-interval", type=_duration, default=60.0,
                       help="seconds between sweeps deleting expired responses (default 60)")  # fmt: skip
    serve.add_argument("--api-key", action="append", default=None, dest="api_keys",
                       help="an accepted API key (repeatable; env OUTLAST_API_KEYS, comma-separated)")  # fmt: skip
    serve.add_argument("--insecure", action="store_true",
                       help="allow binding a non-loopback address without API keys")  # fmt: skip
    serve.add_argument("--drain-timeout", type=_duration, default=30.0,
                       help="on SIGTERM, seconds runs get to finish (default 30)")  # fmt: skip
    serve.add_argument("--max-body-size", type=_positive_int, default=16 * 1024 * 1024,
                       help="largest request body in bytes (default 16 MiB)")  # fmt: skip
    serve.add_argument("--sqlite-synchronous", choices=["FULL", "NORMAL"], default="FULL",
                       help="FULL survives power loss; NORMAL only process crashes (default FULL)")  # fmt: skip
    serve.add_argument("--role", choices=["both", "api", "worker"],
                       default=env("OUTLAST_ROLE", "both"),
                       help="with PostgreSQL: serve HTTP and execute runs (both), only serve (api) "
                            "or only execute (worker); env OUTLAST_ROLE")  # fmt: skip
    serve.add_argument("--lease", type=_duration, default=10.0, dest="lease_seconds",
                       help="with PostgreSQL: seconds a replica that stops answering keeps its "
                            "runs before another replica ends them (default 10)")  # fmt: skip
    serve.add_argument("--db-pool-size", type=_positive_int, default=10,
                       help="PostgreSQL connections per replica (default 10)")  # fmt: skip
    serve.add_argument("--max-attempts", type=_positive_int, default=None,
                       help="with PostgreSQL: attempts a run gets when its replica dies (default: "
                            "1, or what the agent declares with outlast.retry_safe)")  # fmt: skip
    serve.add_argument("--log-level", default="info",
                       choices=["debug", "info", "warning", "error"])  # fmt: skip
    serve.add_argument("--access-log", action="store_true", help="log every HTTP request")
    _add_a2a_arguments(serve)
    _add_observe_arguments(serve)
    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply pending schema migrations")
    upgrade.add_argument(
        "--db",
        default=env("OUTLAST_DATABASE_URL", DEFAULT_DB),
        help=f"database URL (env OUTLAST_DATABASE_URL; default {DEFAULT_DB})",
    )
    client_commands.add_commands(commands)
    return parser


def _add_a2a_arguments(serve: argparse.ArgumentParser) -> None:
    """The A2A transport's flags (see outlast.a2a)."""
    env = os.environ.get
    a2a = serve.add_argument_group("A2A (Agent2Agent) transport")
    a2a.add_argument("--a2a", dest="a2a", action="store_const", const="on",
                     default=env("OUTLAST_A2A", "auto"),
                     help="require the A2A transport (env OUTLAST_A2A=on|off|auto; default auto: "
                          "served when the a2a extra is installed)")  # fmt: skip
    a2a.add_argument("--no-a2a", dest="a2a", action="store_const", const="off",
                     help="do not serve A2A")  # fmt: skip
    a2a.add_argument("--a2a-name", default=env("OUTLAST_A2A_NAME"),
                     help="agent card name (env OUTLAST_A2A_NAME; default the --agent spec)")  # fmt: skip
    a2a.add_argument("--a2a-description", default=env("OUTLAST_A2A_DESCRIPTION"),
                     help="agent card description (env OUTLAST_A2A_DESCRIPTION; default the "
                          "agent's docstring)")  # fmt: skip
    a2a.add_argument("--a2a-skill", action="append", dest="a2a_skills", default=None,
                     help="an agent card skill, 'Name: description' or a JSON object "
                          "(repeatable; env OUTLAST_A2A_SKILLS, a JSON array)")  # fmt: skip
    a2a.add_argument("--a2a-url", default=env("OUTLAST_A2A_URL"),
                     help="public base URL advertised in the agent card (env OUTLAST_A2A_URL; "
                          "default http://HOST:PORT)")  # fmt: skip
    a2a.add_argument("--a2a-db", default=env("OUTLAST_A2A_DATABASE_URL"),
                     help="database URL of the A2A tables (env OUTLAST_A2A_DATABASE_URL; default "
                          "beside --db)")  # fmt: skip
    a2a.add_argument("--a2a-allow-private-push", action="store_true",
                     default=env("OUTLAST_A2A_ALLOW_PRIVATE_PUSH", "") in ("1", "true", "yes"),
                     help="accept push-notification URLs on loopback/private addresses "
                          "(env OUTLAST_A2A_ALLOW_PRIVATE_PUSH=1)")  # fmt: skip


def _add_observe_arguments(serve: argparse.ArgumentParser) -> None:
    """Metrics and webhooks (see outlast.observe); traces are configured by OTEL_* variables."""
    env = os.environ.get
    group = serve.add_argument_group("metrics and webhooks")
    group.add_argument("--no-metrics", dest="metrics", action="store_false",
                       help="do not serve Prometheus metrics at /metrics")  # fmt: skip
    group.add_argument("--webhook", action="append", dest="webhooks", default=None,
                       help="POST response.completed/failed/cancelled/incomplete events of "
                            "background responses to this URL (repeatable; env "
                            "OUTLAST_WEBHOOKS, comma-separated)")  # fmt: skip
    group.add_argument("--webhook-secret", default=env("OUTLAST_WEBHOOK_SECRET"),
                       help="the webhook signing secret, whsec_... as OpenAI issues them (env "
                            "OUTLAST_WEBHOOK_SECRET; required with --webhook)")  # fmt: skip
    group.add_argument("--webhook-retry-period", type=_duration, default=72 * 3600.0,
                       help="how long failed deliveries are retried, with exponential backoff "
                            "(default 72h)")  # fmt: skip
    group.add_argument("--webhook-concurrency", type=_positive_int, default=8,
                       help="deliveries in flight at once per endpoint (default 8)")  # fmt: skip


def _observe_settings(args: argparse.Namespace) -> ObserveSettings:
    hooks = args.webhooks
    if hooks is None:
        hooks = [u.strip() for u in os.environ.get("OUTLAST_WEBHOOKS", "").split(",") if u.strip()]
    return ObserveSettings(
        metrics=args.metrics,
        webhooks=hooks,
        webhook_secret=args.webhook_secret or None,
        webhook_retry_period=args.webhook_retry_period,
        webhook_concurrency=args.webhook_concurrency,
    )


def _a2a_settings(args: argparse.Namespace) -> A2ASettings:
    skills = args.a2a_skills
    if skills is None:
        skills = [os.environ["OUTLAST_A2A_SKILLS"]] if os.environ.get("OUTLAST_A2A_SKILLS") else []
    return A2ASettings(
        enabled=args.a2a,
        name=args.a2a_name,
        description=args.a2a_description,
        skills=skills,
        url=args.a2a_url,
        db=args.a2a_db,
        allow_private_push=args.a2a_allow_private_push,
    )


def db_upgrade(url: str) -> int:
    """Apply pending migrations and say what was done."""
    from outlast.store import open_store
    from outlast.store.base import StoreUnavailable

    async def upgrade() -> None:
        store = open_store(url)
        await store.open()  # opening applies pending migrations, under a lock
        await store.close()

    try:
        asyncio.run(upgrade())
    except (StoreUnavailable, ValueError) as exc:
        print(f"outlast: {exc}", file=sys.stderr)
        return 1
    print(f"outlast: the schema of {url} is up to date")
    return 0


def settings_from(args: argparse.Namespace) -> Settings:
    keys = args.api_keys
    if keys is None:
        keys = [k.strip() for k in os.environ.get("OUTLAST_API_KEYS", "").split(",") if k.strip()]
    return Settings(
        host=args.host,
        port=args.port,
        db=args.db,
        agent=args.agent,
        max_running=args.max_running,
        max_queued=args.max_queued,
        run_timeout=args.run_timeout,
        retention=args.retention,
        retention_interval=args.retention_interval,
        api_keys=keys,
        insecure=args.insecure,
        drain_timeout=args.drain_timeout,
        max_body_bytes=args.max_body_size,
        sqlite_synchronous=args.sqlite_synchronous,
        log_level=args.log_level,
        role=args.role,
        lease_seconds=args.lease_seconds,
        db_pool_size=args.db_pool_size,
        max_attempts=args.max_attempts,
        a2a=_a2a_settings(args),
        observe=_observe_settings(args),
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(settings: Settings, access_log: bool = False) -> int:
    import uvicorn

    from outlast.agents.base import AgentLoadError
    from outlast.agents.loading import load_agent
    from outlast.server import create_app

    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if settings.role != "both" and not settings.db.startswith(("postgresql://", "postgres://")):
        print(
            f"outlast: --role {settings.role} needs a database shared by replicas "
            "(--db postgresql://…); with SQLite one process serves and executes.",
            file=sys.stderr,
        )
        return 2
    if settings.observe.webhooks:
        from outlast.observe.webhooks import check_webhook_settings

        problem = check_webhook_settings(settings.observe)
        if problem is not None:
            print(f"outlast: {problem}", file=sys.stderr)
            return 2
    if not settings.api_keys and not is_loopback(settings.host) and not settings.insecure:
        print(
            f"outlast: refusing to serve {settings.host} without API keys: anyone who can reach "
            "it could read and cancel every run. Pass --api-key (or OUTLAST_API_KEYS), or "
            "--insecure if you really mean it.",
            file=sys.stderr,
        )
        return 2
    try:
        agent = load_agent(settings.agent)
        app = create_app(settings, agent)
    except (AgentLoadError, ValueError) as exc:
        print(f"outlast: {exc}", file=sys.stderr)
        return 2

    engine = app.state.engine
    # The store's threads hand the GIL back and forth with the busy event loop at every SQLite
    # call; at the default 5 ms switch interval each hand-back can stall a commit that long.
    sys.setswitchinterval(0.001)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=access_log,
        lifespan="on",
        # Open streams end when their runs end, which the engine bounds by the drain timeout.
        timeout_graceful_shutdown=int(settings.drain_timeout) + 10,
    )

    class Server(uvicorn.Server):
        """uvicorn, with a drain in front of its shutdown.

        On the first SIGTERM/SIGINT the server keeps listening while the engine drains, so new
        creates get a clear 503 and ``/healthz`` says ``draining`` (a load balancer takes the
        replica out) instead of connections being refused. When the drain ends, uvicorn's own
        shutdown begins. A second signal forces it at once.
        """

        draining = False

        def handle_exit(self, sig: int, frame: Any) -> None:
            if self.draining:
                super().handle_exit(sig, frame)
                return
            self.draining = True
            asyncio.get_event_loop().call_soon_threadsafe(self._drain_then_exit, sig)

        def _drain_then_exit(self, sig: int) -> None:
            engine.begin_shutdown()

            def finished(_: object) -> None:
                super(Server, self).handle_exit(sig, None)
                # uvicorn re-raises a signal it handled once it has stopped, which would make a
                # clean, drained shutdown exit with -15; the drain is the handling.
                self._captured_signals.clear()

            engine.shutdown_task.add_done_callback(finished)

    logging.getLogger("outlast").info(
        "serving %s on http://%s:%d (db %s)", settings.agent, settings.host, settings.port,
        settings.db,
    )  # fmt: skip
    Server(config).run()
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        sys.exit(serve(settings_from(args), access_log=args.access_log))
    if args.command == "db" and args.db_command == "upgrade":
        sys.exit(db_upgrade(args.db))
    if args.command in client_commands.COMMANDS:
        sys.exit(client_commands.main(args))


if __name__ == "__main__":
    main()
