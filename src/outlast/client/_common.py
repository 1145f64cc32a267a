"""What every client command of ``outlast`` shares: the server it talks to, exit codes, error
lines, and ids given as prefixes.

A leaf below the commands (:mod:`outlast.client._run`, :mod:`outlast.client._show`) and the
parser (:mod:`outlast.client.cli`), so that none of them imports another. Importing it is cheap:
``httpx2`` and the SDK's error classes are imported by the functions that need them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from outlast.client._sync import OutlastClient

DEFAULT_URL = "http://127.0.0.1:8000"
STATUSES = ("queued", "in_progress", "completed", "failed", "cancelled", "incomplete")
# outlast.client._policy's, without importing the SDK it needs.
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "incomplete"})

EXIT_OK, EXIT_RUN_ENDED_BADLY, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for `yes | head`
# A full response id: "resp_" and 48 hex digits (outlast.protocol.ids); anything shorter that
# has that shape is taken as a prefix.
FULL_ID_LENGTH = len("resp_") + 48
_HEX = frozenset("0123456789abcdef")
# How long `outlast run` waits for a first answer from a server before saying it is not there.
REACHABLE_WITHIN = 5.0


# -- the server ------------------------------------------------------------------------------


def base_url(url: str) -> str:
    """The API base URL (``…/v1``) of a server URL, with or without the ``/v1``."""
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


def connection(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """The server URL and API key of a client command: its flags, else ``OUTLAST_URL`` and
    ``OUTLAST_API_KEY``, else the defaults.

    The client is a program of its own, so it has its own two options, read here and only here
    (this function is the client's configuration layer); the server's are in
    :mod:`outlast.config`.
    """
    env = os.environ if environ is None else environ
    url = getattr(args, "url", None) or env.get("OUTLAST_URL") or DEFAULT_URL
    # The SDK insists on a key; a server without keys accepts any.
    key = getattr(args, "api_key", None) or env.get("OUTLAST_API_KEY") or "none"
    return url, key


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


# -- errors ----------------------------------------------------------------------------------


def error(message: str) -> None:
    """Say what went wrong on stderr, as ``outlast: <message>``."""
    print(f"outlast: {message}", file=sys.stderr, flush=True)


def status_message(status: int, body: object, otherwise: str) -> str:
    """A refused request's line: the server's own message with its status (``404: …``) when
    its body is an OpenAI error envelope, else ``otherwise``."""
    if isinstance(body, dict):
        found = body.get("error", body)
        if isinstance(found, dict) and isinstance(found.get("message"), str):
            return f"{status}: {found['message']}"
    return otherwise


# -- ids and their prefixes ------------------------------------------------------------------


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
