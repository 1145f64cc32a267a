"""The console's page and assets: files of the package, served with strict security headers.

Agent output shown by the page is untrusted, so the page itself must not be able to run anything
but its own files: the Content-Security-Policy allows scripts, styles and connections to this
origin only (no inline script, no ``eval``), and no framing.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from outlast.http.errors import APIError

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # The assets change with the installed package: always revalidate, never serve a stale page.
    "Cache-Control": "no-cache",
}
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@cache
def assets() -> dict[str, tuple[bytes, str]]:
    """Every file under ``static/`` by name, read once: a request can only name one of these
    (no path is ever joined from the URL, so there is nothing to traverse)."""
    found: dict[str, tuple[bytes, str]] = {}
    for entry in files(__package__).joinpath("static").iterdir():
        suffix = entry.name[entry.name.rfind(".") :]
        if entry.is_file() and suffix in MEDIA_TYPES:
            found[entry.name] = (entry.read_bytes(), MEDIA_TYPES[suffix])
    return found


def _file(name: str) -> Response:
    asset = assets().get(name)
    if asset is None:
        raise APIError(404, f"No console file named '{name}'.", code="not_found")
    body, media_type = asset
    return Response(body, media_type=media_type, headers=SECURITY_HEADERS)


async def index(request: Request) -> Response:
    """The console's one page; its views are chosen by the URL's fragment (``#/runs/<id>``)."""
    return _file("index.html")


async def asset(request: Request) -> Response:
    return _file(request.path_params["name"])


async def root(request: Request) -> Response:
    """``/``: the console, for a person who opens the server's address in a browser."""
    return RedirectResponse("/console", status_code=307)
