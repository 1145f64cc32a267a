"""The client commands of ``outlast``: ``run``, ``tail``, ``get``, ``cancel`` and ``ls``.

Each talks to a server at ``--url`` (``OUTLAST_URL``, default ``http://127.0.0.1:8000``) with
``--api-key`` (``OUTLAST_API_KEY``) through :class:`outlast.client.OutlastClient`, so a stream
that drops is resumed exactly where it stopped.

Ids are never shortened in what is printed, and every command that takes an id takes any unique
prefix of it (``resp_c46f``, or ``c46f``). ``--url`` and ``--api-key`` may come before or after
the command's name.

Exit codes: 0 the run completed (or the command did its job), 1 the run failed, was cancelled or
is incomplete, or the response does not exist, 2 the server could not be reached or refused the
request (or a prefix matched several ids), 130 interrupted with Ctrl-C, 141 the reader of stdout
went away (``outlast ls | head``), as for a command killed by SIGPIPE.

This module is the parser and the dispatch; the commands are :mod:`outlast.client._run`
(``run``, ``tail``) and :mod:`outlast.client._show` (``get``, ``cancel``, ``ls``), what they print
is made by :mod:`outlast.client._render` and shown by :mod:`outlast.client._display`, and what
they share (the server, exit codes, id prefixes) is :mod:`outlast.client._common`.

Importing this module is cheap (``outlast serve`` builds its parser from it): the ``openai`` SDK,
which the client is built on, and ``rich`` are imported by the commands that use them, and
``ls`` lists with the SDK's HTTP client alone, since the SDK's types take longer to import than
the listing takes.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

# What the commands share, and the commands, under the names this module has always had.
from outlast.client._common import (
    DEFAULT_URL,
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RUN_ENDED_BADLY,
    EXIT_UNREACHABLE,
    FULL_ID_LENGTH,
    REACHABLE_WITHIN,
    STATUSES,
    TERMINAL_STATUSES,
    AmbiguousId,
    base_url,
    connection,
    error,
    is_prefix,
    resolve,
    status_message,
    unreachable,
)
from outlast.client._render import final_line, message_texts
from outlast.client._run import read_prompt, run_command, tail_command
from outlast.client._show import cancel_command, get_command, ls_command, ls_main

if TYPE_CHECKING:
    import openai

    from outlast.client._sync import OutlastClient

__all__ = [
    "COMMANDS", "DEFAULT_MODEL", "DEFAULT_URL", "EXIT_BROKEN_PIPE", "EXIT_INTERRUPTED", "EXIT_OK",
    "EXIT_RUN_ENDED_BADLY", "EXIT_UNREACHABLE", "FULL_ID_LENGTH", "REACHABLE_WITHIN", "STATUSES",
    "TERMINAL_STATUSES", "AmbiguousId", "add_commands", "add_connection_arguments", "base_url",
    "cancel_command", "connection", "final_line", "get_command", "is_prefix", "ls_command",
    "main", "message_texts", "read_prompt", "resolve", "run_command", "tail_command",
    "unreachable",
]  # fmt: skip

DEFAULT_MODEL = "default"
COMMANDS = frozenset({"run", "tail", "get", "cancel", "ls"})


# -- the parser ----------------------------------------------------------------------------


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError("must be between 1 and 100")
    return value


def _sequence(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an event number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("event numbers start at 0")
    return value


def add_connection_arguments(parser: argparse.ArgumentParser, *, default: Any = None) -> None:
    """``--url`` and ``--api-key``: on ``outlast`` itself and on each client command.

    The commands' copies default to ``argparse.SUPPRESS``, so that a flag given before the
    command's name (``outlast --url … ls``) is not overwritten by the command's own default.
    """
    parser.add_argument("--url", default=default,
                        help=f"the server (env OUTLAST_URL; default {DEFAULT_URL})")  # fmt: skip
    parser.add_argument("--api-key", default=default,
                        help="the API key (env OUTLAST_API_KEY)")  # fmt: skip


def add_commands(commands: Any) -> None:
    """Add the client commands to ``outlast``'s subcommands (an ``add_subparsers`` result)."""
    server = argparse.ArgumentParser(add_help=False)
    add_connection_arguments(server, default=argparse.SUPPRESS)

    run = commands.add_parser("run", parents=[server], help="start a run and stream its text")
    run.add_argument("prompt", nargs="?", default=None,
                     help="the input of the run ('-' or none: read it from stdin)")  # fmt: skip
    run.add_argument("--agent-model", default=DEFAULT_MODEL, metavar="M",
                     help=f"the request's model, as the agent sees it (default {DEFAULT_MODEL!r})")  # fmt: skip
    run.add_argument("--instructions", default=None, metavar="TEXT",
                     help="the request's instructions (a system message for the agent)")  # fmt: skip
    run.add_argument("--previous", default=None, metavar="ID",
                     help="continue the conversation of this response (previous_response_id)")  # fmt: skip
    run.add_argument("--detach", action="store_true",
                     help="start the run, print its id and exit")  # fmt: skip
    run.add_argument("--json", action="store_true",
                     help="print every event as one line of JSON instead of the text")  # fmt: skip

    tail = commands.add_parser("tail", parents=[server], help="follow a run's stream")
    tail.add_argument("id", help="a response id or a unique prefix (or a continuation token, id:N)")
    tail.add_argument("--from", dest="start", type=_sequence, default=None, metavar="N",
                      help="start at event N (default: the start, or after a token's event)")  # fmt: skip
    tail.add_argument("--json", action="store_true",
                      help="print every event as one line of JSON instead of the text")  # fmt: skip

    get = commands.add_parser("get", parents=[server], help="show a response")
    get.add_argument("id", help="a response id or a unique prefix")
    get.add_argument("--json", action="store_true", help="print the response object as JSON")

    cancel = commands.add_parser("cancel", parents=[server], help="cancel a run")
    cancel.add_argument("id", help="a response id or a unique prefix")

    ls = commands.add_parser("ls", parents=[server], help="list recent runs, newest first")
    ls.add_argument("--status", choices=STATUSES, default=None, help="only runs in this state")
    ls.add_argument("--limit", type=_count, default=20, metavar="N",
                    help="how many (1-100, default 20)")  # fmt: skip


def main(args: argparse.Namespace) -> int:
    """Run one client command; returns the exit code."""
    try:
        return _main(args)
    except BrokenPipeError:
        # The reader of stdout went away (``| head``): stop quietly, as a command killed by
        # SIGPIPE would. stdout is pointed at /dev/null so that the interpreter's own flush at
        # exit does not raise (and print) the same error again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _main(args: argparse.Namespace) -> int:
    url, key = connection(args)
    if args.command == "ls":
        return ls_main(url, key, args)
    import openai

    from outlast.client._errors import OutlastError, ReconnectFailed, RunNotFound
    from outlast.client._sync import OutlastClient

    commands: dict[str, Callable[[OutlastClient, argparse.Namespace], int]] = {
        "run": run_command,
        "tail": tail_command,
        "get": get_command,
        "cancel": cancel_command,
    }
    client = OutlastClient(base_url=base_url(url), api_key=key)
    try:
        return commands[args.command](client, args)
    except RunNotFound as exc:
        error(f"no response {exc.response_id} (for this API key)")
        return EXIT_RUN_ENDED_BADLY
    except AmbiguousId as exc:
        error(str(exc))
        return EXIT_UNREACHABLE
    except (openai.APIConnectionError, ReconnectFailed) as exc:
        error(f"cannot reach {url}: {exc}")
        return EXIT_UNREACHABLE
    except openai.APIStatusError as exc:
        error(_api_message(exc))
        return EXIT_UNREACHABLE
    except OutlastError as exc:
        error(str(exc))
        return EXIT_UNREACHABLE
    finally:
        client.close()


def _api_message(exc: openai.APIStatusError) -> str:
    return status_message(exc.status_code, exc.body, str(exc))
