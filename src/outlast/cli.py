"""The ``outlast`` command: ``outlast serve`` hosts an agent behind the Responses API."""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from outlast import config, configfile, testing
from outlast.client import cli as client_commands
from outlast.config import OptionError, Settings

log = logging.getLogger("outlast")


def build_parser() -> argparse.ArgumentParser:
    """The ``outlast`` command line; the server's options come from :data:`outlast.config.OPTIONS`."""
    parser = argparse.ArgumentParser(
        prog="outlast", description="Run long-running agents behind the OpenAI Responses API."
    )
    # The client commands' --url and --api-key, also accepted before the command's name.
    client_commands.add_connection_arguments(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve an agent over HTTP")
    config.add_arguments(serve, "serve")
    _add_config_argument(serve)
    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply pending schema migrations")
    config.add_arguments(upgrade, "db upgrade")
    _add_config_argument(upgrade)
    client_commands.add_commands(commands)
    testmodel = commands.add_parser(
        "testmodel", help="serve an OpenAI-compatible model for trying agents offline"
    )
    testing.add_arguments(testmodel)
    return parser


def _add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default=None, metavar="PATH",
        help="a TOML file of these options, keys named as the flags without -- "
             "(env OUTLAST_CONFIG; default ./outlast.toml, else [tool.outlast] in ./pyproject.toml)",
    )  # fmt: skip


def tune_gc() -> None:
    """Fewer garbage collections for a server holding many live objects (runs, their states,
    open streams): each collection of the older generations walks all of them, and at the
    default thresholds (700, 10, 10) a server hosting 2,000 runs emitting once a second spent
    about a fifth of its CPU there (``docs/benchmarks.md``). Nearly all of its garbage is freed
    by reference counting, not by the collector. What exists once the app is built (modules,
    the engine) is frozen: never walked again."""
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)


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
    """The settings of a parsed ``outlast serve`` (or ``db upgrade``): flags, then ``OUTLAST_*``
    variables, then the configuration file (:mod:`outlast.configfile`), then defaults. Raises :class:`outlast.config.OptionError` for a bad variable."""
    command = "db upgrade" if args.command == "db" else args.command
    source, table = configfile.find(getattr(args, "config", None), os.environ, Path.cwd())
    file_values = configfile.values(table, source, command) if table else None
    return config.settings_from(args, command=command, file_values=file_values)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def import_from_current_directory() -> None:
    """Make ``--agent mymod:agent`` find ``mymod.py`` in the current folder.

    ``python -m outlast`` and uvicorn import from the current directory; a console script does
    not (its ``sys.path[0]`` is the folder of the script, in the virtualenv's ``bin``), so the
    same command would work one way and fail the other with "No module named 'mymod'".
    """
    here = os.getcwd()
    if "" not in sys.path and here not in sys.path:
        sys.path.insert(0, here)


def serve(settings: Settings) -> int:
    import uvicorn

    from outlast.agents.base import AgentLoadError
    from outlast.agents.loading import load_agent
    from outlast.asgi.connections import uvicorn_options
    from outlast.observe import logs
    from outlast.server import create_app

    logs.configure(settings.log_level, settings.log_format)
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
    import_from_current_directory()
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
    tune_gc()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # Its lines go through outlast's handler (observe/logs.py): one format for all.
        log_config=None,
        access_log=settings.access_log,
        lifespan="on",
        # Open streams end when their runs end, which the engine bounds by the drain timeout.
        timeout_graceful_shutdown=int(settings.drain_timeout) + 10,
        # Header and keep-alive deadlines, header size, connections served (--header-timeout…).
        **uvicorn_options(settings),
    )

    class Server(uvicorn.Server):
        """uvicorn, with a drain in front of its shutdown.

        On the first SIGTERM/SIGINT the server keeps listening while the engine drains, so new
        creates get a clear 503 and ``/healthz`` says ``draining`` (a load balancer takes the
        replica out) instead of connections being refused. When the drain ends, uvicorn's own
        shutdown begins. A second signal ends the drain at once: the runs still going are
        stopped as at the drain's deadline, their ends written, and the process exits.
        """

        draining = hurried = False

        def handle_exit(self, sig: int, frame: Any) -> None:
            loop = asyncio.get_event_loop()
            if self.hurried:  # a third signal: uvicorn's own forced exit
                super().handle_exit(sig, frame)
                return
            if self.draining:
                # Not uvicorn's forced exit, which skips the lifespan's shutdown: the engine
                # still writes the end of every run it stops and closes the store.
                self.hurried = True
                loop.call_soon_threadsafe(self._stop_now)
                return
            self.draining = True
            loop.call_soon_threadsafe(self._drain_then_exit, sig)

        def _stop_now(self) -> None:
            log.warning("second signal: stopping now, without waiting for the runs")
            engine.executor.drain_now()

        def _drain_then_exit(self, sig: int) -> None:
            again = "Ctrl-C" if sig == signal.SIGINT else "the signal"
            log.info(
                "shutting down: new runs refused, running ones have up to %.0f s to finish "
                "(%s again stops at once)", settings.drain_timeout, again,
            )  # fmt: skip
            engine.begin_shutdown()

            def finished(_: object) -> None:
                super(Server, self).handle_exit(sig, None)
                # uvicorn re-raises a signal it handled once it has stopped, which would make a
                # clean, drained shutdown exit with -15; the drain is the handling.
                self._captured_signals.clear()

            engine.shutdown_task.add_done_callback(finished)

    log.info(
        "serving %s on http://%s:%d (db %s)", settings.agent, settings.host, settings.port,
        settings.db,
    )  # fmt: skip
    Server(config).run()
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command in ("serve", "db"):
        try:
            settings = settings_from(args)
        except OptionError as exc:
            # As argparse says a bad flag: one line, exit 2, no traceback.
            print(f"outlast: {exc}", file=sys.stderr)
            sys.exit(2)
        if args.command == "serve":
            sys.exit(serve(settings))
        if args.db_command == "upgrade":
            sys.exit(db_upgrade(settings.db))
    if args.command in client_commands.COMMANDS:
        sys.exit(client_commands.main(args))
    if args.command == "testmodel":
        from outlast.testing import model as test_model

        test_model.serve(args)


if __name__ == "__main__":
    main()
