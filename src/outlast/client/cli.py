"""The client commands of ``outlast``: ``run``, ``tail``, ``get``, ``cancel`` and ``ls``.

Each talks to a server at ``--url`` (``OUTLAST_URL``, default ``http://127.0.0.1:8000``) with
``--api-key`` (``OUTLAST_API_KEY``) through :class:`outlast.client.OutlastClient`, so a stream
that drops is resumed exactly where it stopped.

Exit codes: 0 the run completed (or the command did its job), 1 the run failed, was cancelled or
is incomplete, or the response does not exist, 2 the server could not be reached or refused the
request, 130 interrupted with Ctrl-C.

Importing this module is cheap (``outlast serve`` builds its parser from it): the ``openai`` SDK,
which the client is built on, and ``rich`` are imported by the commands that use them, and
``ls`` lists with the SDK's HTTP client alone, since the SDK's types take longer to import than
the listing takes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any

from outlast.client._token import ContinuationToken

if TYPE_CHECKING:
    import httpx2
    import openai
    from openai.types.responses import Response, ResponseStreamEvent

    from outlast.client._display import Display
    from outlast.client._policy import Reconnecting
    from outlast.client._sync import OutlastClient, RunStream

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_MODEL = "default"
COMMANDS = frozenset({"run", "tail", "get", "cancel", "ls"})
STATUSES = ("queued", "in_progress", "completed", "failed", "cancelled", "incomplete")

EXIT_OK, EXIT_RUN_ENDED_BADLY, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 130
# outlast.client._policy's, without importing the SDK it needs.
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "incomplete"})


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


def add_commands(commands: Any) -> None:
    """Add the client commands to ``outlast``'s subcommands (an ``add_subparsers`` result)."""
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument("--url", default=None,
                        help=f"the server (env OUTLAST_URL; default {DEFAULT_URL})")  # fmt: skip
    server.add_argument("--api-key", default=None,
                        help="the API key (env OUTLAST_API_KEY)")  # fmt: skip

    run = commands.add_parser("run", parents=[server], help="start a run and stream its text")
    run.add_argument("prompt", help="the input of the run")
    run.add_argument("--agent-model", default=DEFAULT_MODEL, metavar="M",
                     help=f"the request's model, as the agent sees it (default {DEFAULT_MODEL!r})")  # fmt: skip
    run.add_argument("--detach", action="store_true",
                     help="start the run, print its id and exit")  # fmt: skip

    tail = commands.add_parser("tail", parents=[server], help="follow a run's stream")
    tail.add_argument("id", help="a response id (or a continuation token, id:N)")
    tail.add_argument("--from", dest="start", type=_sequence, default=None, metavar="N",
                      help="start at event N (default: the start, or after a token's event)")  # fmt: skip

    get = commands.add_parser("get", parents=[server], help="show a response")
    get.add_argument("id", help="a response id")
    get.add_argument("--json", action="store_true", help="print the response object as JSON")

    cancel = commands.add_parser("cancel", parents=[server], help="cancel a run")
    cancel.add_argument("id", help="a response id")

    ls = commands.add_parser("ls", parents=[server], help="list recent runs, newest first")
    ls.add_argument("--status", choices=STATUSES, default=None, help="only runs in this state")
    ls.add_argument("--limit", type=_count, default=20, metavar="N",
                    help="how many (1-100, default 20)")  # fmt: skip


def base_url(url: str) -> str:
    """The API base URL (``…/v1``) of a server URL, with or without the ``/v1``."""
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


def connection(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """The server URL and API key of a client command: its flags, else ``OUTLAST_URL`` and
    ``OUTLAST_API_KEY``, else the defaults.

    The client is a program of its own, so it has its own two options, read here and only here;
    the server's options are in :mod:`outlast.config`.
    """
    env = os.environ if environ is None else environ
    url = args.url or env.get("OUTLAST_URL") or DEFAULT_URL
    # The SDK insists on a key; a server without keys accepts any.
    key = args.api_key or env.get("OUTLAST_API_KEY") or "none"
    return url, key


def main(args: argparse.Namespace) -> int:
    """Run one client command; returns the exit code."""
    url, key = connection(args)
    if args.command == "ls":
        return _ls_main(url, key, args)
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
        _error(f"no response {exc.response_id} (for this API key)")
        return EXIT_RUN_ENDED_BADLY
    except (openai.APIConnectionError, ReconnectFailed) as exc:
        _error(f"cannot reach {url}: {exc}")
        return EXIT_UNREACHABLE
    except openai.APIStatusError as exc:
        _error(_api_message(exc))
        return EXIT_UNREACHABLE
    except OutlastError as exc:
        _error(str(exc))
        return EXIT_UNREACHABLE
    finally:
        client.close()


def _error(message: str) -> None:
    print(f"outlast: {message}", file=sys.stderr, flush=True)


def _api_message(exc: openai.APIStatusError) -> str:
    return _status_message(exc.status_code, exc.body, str(exc))


def _status_message(status: int, body: object, otherwise: str) -> str:
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return f"{status}: {error['message']}"
    return otherwise


def _reattach(args: argparse.Namespace, token: ContinuationToken) -> str:
    url = f" --url {args.url}" if args.url else ""
    return f"outlast tail {token.response_id} --from {token.sequence_number + 1}{url}"


# -- run and tail ----------------------------------------------------------------------------


def run_command(client: OutlastClient, args: argparse.Namespace) -> int:
    if args.detach:
        response, _ = client.start(model=args.agent_model, input=args.prompt)
        print(response.id, flush=True)
        if sys.stderr.isatty():
            print(f"follow it with: outlast tail {response.id}", file=sys.stderr)
        return EXIT_OK
    stream = client.stream(model=args.agent_model, input=args.prompt)
    return _follow(client, stream, args, offer_cancel=True)


def tail_command(client: OutlastClient, args: argparse.Namespace) -> int:
    token = ContinuationToken.parse(args.id)
    if args.start is not None:
        token = token.after(args.start - 1)
    return _follow(client, client.resume(token), args, offer_cancel=False)


def _follow(
    client: OutlastClient, stream: RunStream, args: argparse.Namespace, *, offer_cancel: bool
) -> int:
    """Show a run's stream until it ends; Ctrl-C offers to cancel it or leave it running."""
    from outlast.client._display import display_for

    display = display_for(stream.response_id or "starting")

    def reconnecting(info: Reconnecting) -> None:
        cause = type(info.error).__name__ if info.error else "the stream ended early"
        wait = f" in {info.delay:.1f}s" if info.delay >= 0.1 else ""
        display.note(
            f"connection lost ({cause}); resuming after event {info.token.sequence_number}"
            f"{wait} (attempt {info.attempt})"
        )

    client.on_reconnect = reconnecting
    events = 0
    shown = _Shown()
    try:
        for event in stream:
            events += 1
            if events == 1 and stream.response_id is not None:
                display.set_label(stream.response_id)
            shown.show(display, event)
            state = stream.response.status if stream.response else "in_progress"
            display.status(state or "in_progress", events)
    except KeyboardInterrupt:
        display.pause()
        return _interrupted(client, stream, args, offer_cancel)
    finally:
        display.pause()
        stream.close()
    response = stream.response
    if response is None or response.status not in TERMINAL_STATUSES:
        _error("the stream ended before the run did")
        return EXIT_UNREACHABLE
    return _report_end(response)


class _Shown:
    """Turns events into display calls; remembers whether text was shown (to space messages)."""

    def __init__(self) -> None:
        self.text = False

    def show(self, display: Display, event: ResponseStreamEvent) -> None:
        if event.type == "response.output_text.delta":
            display.text(event.delta)
            self.text = self.text or bool(event.delta)
        elif event.type == "response.output_item.added":
            # A new message after earlier text starts a new paragraph.
            if event.item.type == "message" and self.text:
                display.text("\n\n")
        elif event.type == "response.output_item.done":
            item = event.item
            if item.type == "function_call":
                display.aside(f"→ {item.name}({item.arguments})")
            elif item.type == "function_call_output":
                output = item.output if isinstance(item.output, str) else json.dumps(item.output)
                display.aside(f"← {_clip(output, 120)}")
            elif item.type == "reasoning":
                for part in item.summary:
                    display.aside(f"… {_clip(part.text, 200)}")


def _clip(text: str, length: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 1] + "…"


def _report_end(response: Response) -> int:
    if response.status == "completed":
        return EXIT_OK
    if response.status == "failed":
        message = response.error.message if response.error else "no message"
        _error(f"{response.id} failed: {message}")
    elif response.status == "incomplete":
        reason = response.incomplete_details.reason if response.incomplete_details else None
        _error(f"{response.id} is incomplete ({reason})")
    else:
        _error(f"{response.id} was {response.status}")
    return EXIT_RUN_ENDED_BADLY


def _interrupted(
    client: OutlastClient, stream: RunStream, args: argparse.Namespace, offer_cancel: bool
) -> int:
    token = stream.token
    if token is None:
        _error("interrupted before the run had an id")
        return EXIT_INTERRUPTED
    if stream.finished:
        return EXIT_INTERRUPTED
    from rich.console import Console
    from rich.prompt import Prompt

    err = Console(stderr=True, highlight=False)
    choice = "l"
    if offer_cancel and sys.stdin.isatty():
        try:
            choice = Prompt.ask(
                f"\n[bold]{token.response_id}[/] is still running. "
                "[bold]c[/]ancel it, or [bold]l[/]eave it running?",
                choices=["c", "l"],
                default="l",
                console=err,
            )
        except (KeyboardInterrupt, EOFError):
            choice = "l"  # a second Ctrl-C never destroys work
    if choice == "c":
        response = client.cancel(token)
        err.print(f"{response.id} {response.status}.", markup=False)
        return EXIT_INTERRUPTED
    err.print(f"\n{token.response_id} is still running. Re-attach with:", markup=False)
    err.print(f"  {_reattach(args, token)}", markup=False, soft_wrap=True)
    return EXIT_INTERRUPTED


# -- get, cancel, ls -------------------------------------------------------------------------


def get_command(client: OutlastClient, args: argparse.Namespace) -> int:
    response = client.poll(args.id)
    if args.json:
        print(response.to_json(indent=2))
        return EXIT_OK
    rows = [
        ("id", response.id),
        ("status", response.status or ""),
        ("model", response.model),
        ("created", _when(response.created_at)),
        ("duration", _duration(response)),
    ]
    if response.error is not None:
        rows.append(("error", response.error.message))
    text = response.output_text
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        console = Console(highlight=False)
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        for name, value in rows:
            grid.add_row(name, value)
        console.print(grid)
        if text:
            console.print()
            console.print(text, markup=False)
    else:
        for name, value in rows:
            print(f"{name}\t{value}")
        if text:
            print()
            print(text)
    return EXIT_OK


def cancel_command(client: OutlastClient, args: argparse.Namespace) -> int:
    # Cancel is idempotent and answers a finished response unchanged: look first, so that the
    # message can say which of the two happened.
    before = client.poll(args.id)
    if before.status in TERMINAL_STATUSES:
        print(f"{before.id} had already ended: {before.status}")
        return EXIT_OK
    response = client.cancel(args.id)
    print(f"{response.id} {response.status}")
    return EXIT_OK


class _ListingFailed(Exception):
    """``ls`` could not list: its message, worded as the SDK's errors are (``Connection
    error.``, ``Request timed out.``, or the server's own message with its status)."""

    def __init__(self, message: str, *, reached: bool) -> None:
        super().__init__(message)
        self.reached = reached


def _ls_main(url: str, key: str, args: argparse.Namespace) -> int:
    import httpx2

    # As OutlastClient's SDK client: the same HTTP client, timeouts, redirects and key.
    http = httpx2.Client(
        base_url=base_url(url),
        headers={"Authorization": f"Bearer {key}"},
        timeout=httpx2.Timeout(60.0, connect=10.0),
        follow_redirects=True,
    )
    try:
        return ls_command(http, args)
    except _ListingFailed as exc:
        _error(str(exc) if exc.reached else f"cannot reach {url}: {exc}")
        return EXIT_UNREACHABLE
    finally:
        http.close()


def _get_json(http: httpx2.Client, path: str, params: dict[str, Any]) -> Any:
    import httpx2

    try:
        reply = http.get(path, params=params)
    except httpx2.TimeoutException:
        raise _ListingFailed("Request timed out.", reached=False) from None
    except httpx2.HTTPError:
        raise _ListingFailed("Connection error.", reached=False) from None
    try:
        body: Any = reply.json()
    except ValueError:
        body = reply.text
    if reply.status_code >= 400:
        otherwise = f"Error code: {reply.status_code} - {body}"
        raise _ListingFailed(_status_message(reply.status_code, body, otherwise), reached=True)
    return body


def ls_command(http: httpx2.Client, args: argparse.Namespace) -> int:
    query: dict[str, Any] = {"limit": args.limit, "order": "desc"}
    if args.status is not None:
        query["status"] = args.status
    page = _get_json(http, "/responses", query)
    responses: list[dict[str, Any]] = list(page.get("data") or []) if isinstance(page, dict) else []
    # The response object holds no input; each run's first input item is asked for (in parallel).
    with ThreadPoolExecutor(8) as pool:
        inputs = list(pool.map(lambda r: _first_words(http, r["id"]), responses))
    rows: list[tuple[str, ...]] = [
        (
            r["id"],
            r.get("status") or "",
            _when(r["created_at"]),
            _took(r.get("status"), r["created_at"], r.get("completed_at")),
            r.get("model") or "",
            words,
        )
        for r, words in zip(responses, inputs, strict=True)
    ]
    headers = ("ID", "STATUS", "CREATED", "DURATION", "MODEL", "INPUT")
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(*headers, box=None, header_style="bold", pad_edge=False)
        colours = {"completed": "green", "failed": "red", "cancelled": "yellow"}
        for row in rows:
            table.add_row(*row[:1], f"[{colours.get(row[1], 'cyan')}]{row[1]}[/]", *row[2:])
        Console(highlight=False).print(table)
    else:
        for row in [headers, *rows]:
            print("\t".join(row))
    return EXIT_OK


def _first_words(http: httpx2.Client, response_id: str, words: int = 8) -> str:
    try:
        items = _get_json(
            http, f"/responses/{response_id}/input_items", {"limit": 1, "order": "asc"}
        )
    except _ListingFailed:
        return ""
    for item in items.get("data") or [] if isinstance(items, dict) else []:
        if not isinstance(item, dict):
            continue
        text = " ".join(_texts(item))
        parts = text.split()
        return " ".join(parts[:words]) + (" …" if len(parts) > words else "")
    return ""


def _texts(item: dict[str, Any]) -> Iterator[str]:
    content = item.get("content")
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield part["text"]


def _when(created_at: float) -> str:
    return datetime.fromtimestamp(created_at).strftime("%Y-%m-%d %H:%M:%S")


def _duration(response: Response) -> str:
    return _took(response.status, response.created_at, response.completed_at)


def _took(status: str | None, created_at: float, completed_at: float | None) -> str:
    """How long the run took (completed), or has been going (queued or running)."""
    if status == "completed" and completed_at:
        return _seconds(completed_at - created_at)
    if status in ("queued", "in_progress"):
        return _seconds(time.time() - created_at) + "…"
    return "-"


def _seconds(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
