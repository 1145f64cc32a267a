"""``outlast run`` and ``outlast tail``: follow a run's stream until it ends.

Both show the stream through a :class:`~outlast.client._display.Display` and end with the run's
final line; Ctrl-C offers to cancel a run this command started, or says how to re-attach. A
stream that drops is resumed where it stopped by :class:`outlast.client.OutlastClient`; a server
that is not there at all is said within seconds.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from outlast.client._common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RUN_ENDED_BADLY,
    EXIT_UNREACHABLE,
    TERMINAL_STATUSES,
    connection,
    error,
    resolve,
    unreachable,
)
from outlast.client._render import Shown, elapsed, final_line
from outlast.client._token import ContinuationToken

if TYPE_CHECKING:
    from outlast.client._policy import Reconnecting
    from outlast.client._sync import OutlastClient, RunStream


def read_prompt(args: argparse.Namespace) -> str | None:
    """The prompt: the argument, or stdin when it is ``-`` or absent and stdin is not a terminal."""
    if args.prompt not in (None, "-"):
        return str(args.prompt)
    if args.prompt is None and sys.stdin.isatty():
        return None
    # `echo hello | outlast run` means "hello", not "hello\n".
    return sys.stdin.read().removesuffix("\n")


def run_command(client: OutlastClient, args: argparse.Namespace) -> int:
    """``outlast run``: start a run and stream it (or, ``--detach``, print its id)."""
    prompt = read_prompt(args)
    if prompt is None:
        error("give the input as an argument, or pipe it in: echo hello | outlast run")
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
            error(f"cannot reach {url}: {problem}")
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
    return follow(
        client,
        lambda: client.stream(**params),
        args,
        offer_cancel=True,
        started=time.time(),
        check=lambda: unreachable(url),
    )


def tail_command(client: OutlastClient, args: argparse.Namespace) -> int:
    """``outlast tail``: follow a run's stream from its start, an event, or a token's event."""
    text, sep, number = args.id.rpartition(":")
    token = ContinuationToken.parse(
        f"{resolve(client, text)}:{number}" if sep else resolve(client, args.id)
    )
    if args.start is not None:
        token = token.after(args.start - 1)
    url, _ = connection(args)
    return follow(
        client,
        lambda: client.resume(token),
        args,
        offer_cancel=False,
        started=None,
        check=lambda: unreachable(url),
    )


def follow(
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
        error(f"cannot reach {url}: {problem}")
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
    shown = Shown()
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
        error("the stream ended before the run did")
        return EXIT_UNREACHABLE
    took = (time.time() - started) if started is not None else elapsed(response)
    display.final(final_line(response, events, took), ok=response.status == "completed")
    return EXIT_OK if response.status == "completed" else EXIT_RUN_ENDED_BADLY


def reattach_command(args: argparse.Namespace, token: ContinuationToken) -> str:
    """The ``outlast tail`` command that goes on after ``token``'s event."""
    url = getattr(args, "url", None)
    where = f" --url {url}" if url else ""
    return f"outlast tail {token.response_id} --from {token.sequence_number + 1}{where}"


def _interrupted(
    client: OutlastClient, stream: RunStream, args: argparse.Namespace, offer_cancel: bool
) -> int:
    token = stream.token
    if token is None:
        error("interrupted before the run had an id")
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
    err.print(f"  {reattach_command(args, token)}", markup=False, soft_wrap=True)
    return EXIT_INTERRUPTED
