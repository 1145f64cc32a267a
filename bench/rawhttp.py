"""A lean HTTP/1.1 client on asyncio streams, for the benchmark's client side.

The bench client shares two cores with the server, so it does as little per event as it can: it
decodes the chunked body, splits it into lines, and hands back only the ``data:`` lines (raw JSON
bytes) in batches, one batch per socket read. Callers parse them with orjson. No headers beyond
what is needed, no redirects, no TLS.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson

# The line that ends a finished Responses stream (not an event).
DONE = b"data: [DONE]"

loads = orjson.loads


class HTTPError(Exception):
    """The server answered something unexpected, or the connection broke."""


class ChunkedDecoder:
    """``Transfer-Encoding: chunked`` → payload bytes, fed incrementally."""

    __slots__ = ("buf", "done", "ending", "remaining", "skip")

    def __init__(self) -> None:
        self.buf = b""
        self.remaining = 0  # payload bytes left in the current chunk
        self.skip = 0  # CRLF bytes left to skip after a chunk
        self.ending = False  # saw the zero-size chunk; skipping its final CRLF
        self.done = False

    def feed(self, data: bytes) -> bytes:
        buf = self.buf + data if self.buf else data
        out: list[bytes] = []
        pos = 0
        n = len(buf)
        while pos < n and not self.done:
            if self.remaining:
                take = min(self.remaining, n - pos)
                out.append(buf[pos : pos + take])
                pos += take
                self.remaining -= take
                if not self.remaining:
                    self.skip = 2
                continue
            if self.skip:
                take = min(self.skip, n - pos)
                pos += take
                self.skip -= take
                if not self.skip and self.ending:
                    self.done = True
                continue
            end = buf.find(b"\r\n", pos)
            if end < 0:
                break
            size = int(buf[pos:end].split(b";", 1)[0], 16)
            pos = end + 2
            if size == 0:
                self.ending = True  # no trailers expected: just the final CRLF
                self.skip = 2
            else:
                self.remaining = size
        self.buf = buf[pos:]
        return b"".join(out) if len(out) != 1 else out[0]


class Connection:
    """One keep-alive connection. Requests are sent one at a time (no pipelining)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reusable = False

    async def connect(self) -> Connection:
        self.reader, self.writer = await asyncio.open_connection(
            self.host, self.port, limit=1 << 22
        )
        self.reusable = True
        return self

    def close(self) -> None:
        if self.writer is not None:
            transport = self.writer.transport
            transport.abort()  # no graceful FIN wait: we are done with it
        self.reader = self.writer = None
        self.reusable = False

    def send(self, method: str, path: str, body: bytes | None = None) -> None:
        """Write a request (buffered by the transport; no await needed)."""
        assert self.writer is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))

    async def read_head(self) -> tuple[int, dict[bytes, bytes]]:
        assert self.reader is not None
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self.reusable = False
            raise HTTPError(f"connection closed before the response head: {exc!r}") from None
        lines = raw.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
        if headers.get(b"connection", b"").lower() == b"close":
            self.reusable = False
        return status, headers

    async def read_body(self, headers: dict[bytes, bytes]) -> bytes:
        assert self.reader is not None
        length = headers.get(b"content-length")
        if length is not None:
            return await self.reader.readexactly(int(length))
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            decoder = ChunkedDecoder()
            parts = []
            while not decoder.done:
                data = await self.reader.read(1 << 18)
                if not data:
                    self.reusable = False
                    raise HTTPError("connection closed inside a chunked body")
                parts.append(decoder.feed(data))
            return b"".join(parts)
        self.reusable = False
        return await self.reader.read()

    async def request(
        self, method: str, path: str, body: bytes | None = None
    ) -> tuple[int, dict[bytes, bytes], bytes]:
        self.send(method, path, body)
        status, headers = await self.read_head()
        return status, headers, await self.read_body(headers)

    async def data_batches(self, headers: dict[bytes, bytes]) -> AsyncIterator[list[bytes]]:
        """The ``data:`` payloads of an SSE body, a batch per socket read, until the body ends.

        The connection is reusable afterwards if the body ended cleanly; a caller that stops
        early must ``close()`` it.
        """
        assert self.reader is not None
        reader = self.reader
        chunked = headers.get(b"transfer-encoding", b"").lower() == b"chunked"
        decoder = ChunkedDecoder()
        pending = b""
        while True:
            data = await reader.read(1 << 18)
            if not data:
                self.reusable = False
                if chunked:
                    raise HTTPError("connection closed inside the event stream")
                break
            payload = decoder.feed(data) if chunked else data
            if payload:
                lines = (pending + payload).split(b"\n") if pending else payload.split(b"\n")
                pending = lines.pop()
                # (the data: [DONE] that ends a finished stream is not an event)
                batch = [line[5:] for line in lines if line[:5] == b"data:" and line != DONE]
                if batch:
                    yield batch
            if chunked and decoder.done:
                break
        if pending[:5] == b"data:" and pending != DONE:
            yield [pending[5:]]
