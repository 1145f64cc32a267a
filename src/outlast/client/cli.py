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
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for `yes | head`
# A full response id: "resp_" and 48 hex digits (outlast.protocol.ids); anything shorter that
# has that shape is taken as a prefix.
FULL_ID_LENGTH = len("resp_") + 48
_HEX = frozenset("0123456789abcdef")
# How long `outlast run` waits for a first answer from a server before saying it is not there.
REACHABLE_WITHIN = 5.0
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
    url = getattr(args, "url", None) or env.get("OUTLAST_URL") or DEFAULT_URL
    # The SDK insists on a key; a server without keys accepts any.
    key = getattr(args, "api_key", None) or env.get("OUTLAST_API_KEY") or "none"
    return url, key


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
    except AmbiguousId as exc:
        _error(str(exc))
        return EXIT_UNREACHABLE
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
    url = getattr(args, "url", None)
    where = f" --url {url}" if url else ""
    return f"outlast tail {token.response_id} --from {token.sequence_number + 1}{where}"


def unreachable(url: str, within: float = REACHABLE_WITHIN) -> str | None:
    """Why the server at ``url`` gives no answer at all within ``within`` seconds, or ``None``.

    Any HTTP answer counts as an answer (a draining server's 503, a proxy's 502): those are
    worth the client's retries. Only "nothing there" (refused, unresolvable, silent) is not.
    """
    import httpx2

    root = base_url(url).removesuffix("/v1")
    try:
        httpx2.get(f"{root}/healthz", timeout=within)
    except httpx2.TimeoutException:
        return f"no answer within {within:.0f}s"
    except httpx2.HTTPError as exc:
        return str(exc) or type(exc).__name__
    return None


class AmbiguousId(Exception):
    """A prefix matched more than one response."""


def is_prefix(text: str) -> bool:
    """Whether ``text`` is the start of a response id rather than a whole one."""
    digits = text.removeprefix("resp_")
    return len(text) < FULL_ID_LENGTH and bool(digits) and set(digits) <= _HEX


def resolve(client: OutlastClient, text: str) -> str:
    """The response id ``text`` stands for: itself, or the one id of this key it is a prefix
    of (``resp_c46f`` or ``c46f``). Raises :class:`RunNotFound` or :class:`AmbiguousId`."""
    from outlast.client._errors import RunNotFound

    if not is_prefix(text):
        return text
    prefix = text if text.startswith("resp_") else "resp_" + text
    found: list[str] = []
    # The key's responses, newest first, 100 a request, until a second match or the end.
    for response in client.list_responses(limit=100):
        if response.id.startswith(prefix):
            found.append(response.id)
            if len(found) > 1:
                raise AmbiguousId(
                    f"{text} is the start of more than one response ({', '.join(found)}, …): "
                    "give more of it"
                )
    if not found:
        raise RunNotFound(prefix)
    return found[0]


# -- run and tail ----------------------------------------------------------------------------


def read_prompt(args: argparse.Namespace) -> str | None:
    """The prompt: the argument, or stdin when it is ``-`` or absent and stdin is not a terminal."""
    if args.prompt not in (None, "-"):
        return str(args.prompt)
    if args.prompt is None and sys.stdin.isatty():
        return None
    # `echo hello | outlast run` means "hello", not "hello\n".
    return sys.stdin.read().removesuffix("\n")


def run_command(client: OutlastClient, args: argparse.Namespace) -> int:
    prompt = read_prompt(args)
    if prompt is None:
        _error("give the input as an argument, or pipe it in: echo hello | outlast run")
        return EXIT_UNREACHABLE
    params: dict[str, Any] = {"model": args.agent_model, "input": prompt}
    if args.instructions is not None:
        params["instructions"] = args.instructions
    if args.previous is not None:
        params["previous_response_id"] = resolve(client, args.previous)
    if args.detach:
        url, _ = connection(args)
        problem = unreachable(url)  # the create alone is retried for minutes too
        if problem is not None:
            _error(f"cannot reach {url}: {problem}")
            return EXIT_UNREACHABLE
        response, _ = client.start(**params)
        print(response.id, flush=True)
        if sys.stderr.isatty():
            print(f"follow it with: outlast tail {response.id}", file=sys.stderr)
        return EXIT_OK
    url, _ = connection(args)
    # A stream's create is retried for minutes (a server restarting is worth waiting for); a
    # server that is not there at all is said within seconds, while the status line shows it
    # is connecting.
    return _follow(
        client,
        lambda: client.stream(**params),
        args,
        offer_cancel=True,
        started=time.time(),
        check=lambda: unreachable(url),
    )


def tail_command(client: OutlastClient, args: argparse.Namespace) -> int:
    text, sep, number = args.id.rpartition(":")
    token = ContinuationToken.parse(
        f"{resolve(client, text)}:{number}" if sep else resolve(client, args.id)
    )
    if args.start is not None:
        token = token.after(args.start - 1)
    url, _ = connection(args)
    return _follow(
        client,
        lambda: client.resume(token),
        args,
        offer_cancel=False,
        started=None,
        check=lambda: unreachable(url),
    )


def _follow(
    client: OutlastClient,
    open_stream: Callable[[], RunStream],
    args: argparse.Namespace,
    *,
    offer_cancel: bool,
    started: float | None,
    check: Callable[[], str | None] | None = None,
) -> int:
    """Show a run's stream until it ends; Ctrl-C offers to cancel it or leave it running.

    ``started``: when this command created the run (its wall-clock duration is then known even
    for a run that did not complete, whose response has no ``completed_at``). ``check``: why
    the server cannot be reached, or ``None``, asked while the status line says "connecting".
    """
    from outlast.client._display import JsonLinesDisplay, display_for

    stream = open_stream()
    display = JsonLinesDisplay() if args.json else display_for(stream.response_id or "starting")
    display.status("connecting", 0)
    problem = check() if check is not None else None
    if problem is not None:
        display.pause()
        stream.close()
        url, _ = connection(args)
        _error(f"cannot reach {url}: {problem}")
        return EXIT_UNREACHABLE

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
    took = (time.time() - started) if started is not None else _elapsed(response)
    display.final(final_line(response, events, took), ok=response.status == "completed")
    return EXIT_OK if response.status == "completed" else EXIT_RUN_ENDED_BADLY


class _Shown:
    """Turns events into display calls; remembers whether text was shown (to space messages)."""

    def __init__(self) -> None:
        self.text = False

    def show(self, display: Display, event: ResponseStreamEvent) -> None:
        display.event(event)
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


def _elapsed(response: Response) -> float | None:
    if response.status == "completed" and response.completed_at:
        return max(0.0, response.completed_at - response.created_at)
    return None


def final_line(response: Response, events: int, took: float | None) -> str:
    """The line a followed run ends with: its id, how it ended (and why), how long, how many
    events (``resp_… completed · 3.2s · 57 events``)."""
    ending: str = response.status or "ended"
    if response.status == "failed":
        ending += f": {response.error.message if response.error else 'no message'}"
    elif response.status == "incomplete":
        reason = response.incomplete_details.reason if response.incomplete_details else None
        ending += f" ({reason})"
    parts = [f"{response.id} {ending}"]
    if took is not None:
        parts.append(_seconds(took, precise=True))
    parts.append(f"{events} event{'' if events == 1 else 's'}")
    return " · ".join(parts)


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


def message_texts(response: Response) -> list[str]:
    """The text of each message of a response's output, in order (empty ones left out)."""
    texts = []
    for item in response.output:
        if item.type == "message":
            text = "".join(part.text for part in item.content if part.type == "output_text")
            if text:
                texts.append(text)
    return texts


def get_command(client: OutlastClient, args: argparse.Namespace) -> int:
    response = client.poll(resolve(client, args.id))
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
    # One paragraph per message, as `outlast run` shows them.
    text = "\n\n".join(message_texts(response))
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        console = Console(highlight=False)
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
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
    response_id = resolve(client, args.id)
    # Cancel is idempotent and answers a finished response unchanged: look first, so that the
    # message can say which of the two happened.
    before = client.poll(response_id)
    if before.status in TERMINAL_STATUSES:
        print(f"{before.id} had already ended: {before.status}")
        return EXIT_OK
    response = client.cancel(response_id)
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
    # outlast's listing says when each ended response did (a failed or cancelled one has no
    # completed_at); another server's may not.
    ended = page.get("ended_at") if isinstance(page, dict) else None
    ended_at: dict[str, Any] = ended if isinstance(ended, dict) else {}
    # One request for the whole listing: every column comes from the response objects it holds
    # (a response object has no input, so what is shown is how each run ended or stands).
    rows: list[tuple[str, ...]] = [
        (
            r["id"],
            r.get("status") or "",
            _when(r["created_at"]),
            _took(r.get("status"), r["created_at"], r.get("completed_at") or ended_at.get(r["id"])),
            r.get("model") or "",
            _summary(r),
        )
        for r in responses
    ]
    headers = ("ID", "STATUS", "CREATED", "DURATION", "MODEL", "OUTPUT")
    if sys.stdout.isatty():
        from rich.console import Console

        from outlast.client._display import print_listing

        print_listing(Console(highlight=False), headers, rows)
    else:
        for row in [headers, *rows]:
            print("\t".join(row))
    return EXIT_OK


def _summary(response: dict[str, Any], words: int = 8) -> str:
    """The first words of a listed response's text, or of its error."""
    error = response.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        text = error["message"]
    else:
        text = " ".join(
            " ".join(_texts(item))
            for item in response.get("output") or []
            if isinstance(item, dict) and item.get("type") == "message"
        )
    parts = text.split()
    return " ".join(parts[:words]) + (" …" if len(parts) > words else "")


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
    """How long the run took (ended: ``completed_at``, or the listing's ``ended_at``), or has
    been going (queued or running); "-" when nothing says when it ended."""
    if status in TERMINAL_STATUSES and isinstance(completed_at, int | float) and completed_at:
        return _seconds(completed_at - created_at)
    if status in ("queued", "in_progress"):
        return _seconds(time.time() - created_at) + "…"
    return "-"


def _seconds(seconds: float, *, precise: bool = False) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s" if precise else f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
