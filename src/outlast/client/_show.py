"""``outlast get``, ``outlast cancel`` and ``outlast ls``: look at runs, or stop one.

``get`` and ``cancel`` go through :class:`outlast.client.OutlastClient`. ``ls`` lists with the
SDK's HTTP client alone (``httpx2``), one request for the whole table, since the SDK's types
take longer to import than the listing takes (``bench/startup.py`` holds it to 0.3 s).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from outlast.client._common import (
    EXIT_OK,
    EXIT_UNREACHABLE,
    TERMINAL_STATUSES,
    base_url,
    error,
    resolve,
    status_message,
)
from outlast.client._render import duration, message_texts, summary, took, when

if TYPE_CHECKING:
    import httpx2

    from outlast.client._sync import OutlastClient

LISTING_HEADERS = ("ID", "STATUS", "CREATED", "DURATION", "MODEL", "OUTPUT")


# -- get and cancel --------------------------------------------------------------------------


def get_command(client: OutlastClient, args: argparse.Namespace) -> int:
    """``outlast get``: a response's state and its text (``--json``: the response object)."""
    response = client.poll(resolve(client, args.id))
    if args.json:
        print(response.to_json(indent=2))
        return EXIT_OK
    rows = [
        ("id", response.id),
        ("status", response.status or ""),
        ("model", response.model),
        ("created", when(response.created_at)),
        ("duration", duration(response)),
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
    """``outlast cancel``: cancel a run, or say that it had already ended and how."""
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


# -- ls --------------------------------------------------------------------------------------


class ListingFailed(Exception):
    """``ls`` could not list: its message, worded as the SDK's errors are (``Connection
    error.``, ``Request timed out.``, or the server's own message with its status)."""

    def __init__(self, message: str, *, reached: bool) -> None:
        super().__init__(message)
        self.reached = reached


def ls_main(url: str, key: str, args: argparse.Namespace) -> int:
    """``outlast ls`` against the server at ``url``; returns the exit code."""
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
    except ListingFailed as exc:
        error(str(exc) if exc.reached else f"cannot reach {url}: {exc}")
        return EXIT_UNREACHABLE
    finally:
        http.close()


def _get_json(http: httpx2.Client, path: str, params: dict[str, Any]) -> Any:
    import httpx2

    try:
        reply = http.get(path, params=params)
    except httpx2.TimeoutException:
        raise ListingFailed("Request timed out.", reached=False) from None
    except httpx2.HTTPError:
        raise ListingFailed("Connection error.", reached=False) from None
    try:
        body: Any = reply.json()
    except ValueError:
        body = reply.text
    if reply.status_code >= 400:
        otherwise = f"Error code: {reply.status_code} - {body}"
        raise ListingFailed(status_message(reply.status_code, body, otherwise), reached=True)
    return body


def ls_command(http: httpx2.Client, args: argparse.Namespace) -> int:
    """List the key's recent runs, newest first: a table on a terminal, tab-separated piped."""
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
            when(r["created_at"]),
            took(r.get("status"), r["created_at"], r.get("completed_at") or ended_at.get(r["id"])),
            r.get("model") or "",
            summary(r),
        )
        for r in responses
    ]
    if sys.stdout.isatty():
        from rich.console import Console

        from outlast.client._display import print_listing

        print_listing(Console(highlight=False), LISTING_HEADERS, rows)
    else:
        for row in [LISTING_HEADERS, *rows]:
            print("\t".join(row))
    return EXIT_OK
