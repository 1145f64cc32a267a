"""Reading a request body without ever holding more than a limit of it, or waiting past a time."""

from __future__ import annotations

import asyncio

from starlette.requests import Request

# How long a body may take to arrive when the caller names no timeout (``--body-timeout``).
BODY_TIMEOUT = 60.0


class BodyTooLarge(Exception):
    """The body is (or says it is) larger than the limit."""


class BodyTimeout(Exception):
    """The body did not arrive in time: a client that sends it slowly or stalls half-way."""


async def read_body(request: Request, limit: int, timeout: float = BODY_TIMEOUT) -> bytes:
    """The whole body, refused as soon as it passes ``limit`` bytes (or says it will), or once
    it has taken ``timeout`` seconds (uvicorn bounds the headers' time, not the body's).

    The deadline is on the whole body, not on each chunk: a client trickling a byte at a time
    would otherwise hold the request (and its connection) for as long as it likes.
    """
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTimeout from None
    return b"".join(chunks)
