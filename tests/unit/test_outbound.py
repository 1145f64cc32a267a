"""Which URLs the server calls for its callers (A2A push), and that it calls the address it checked."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from outlast.outbound import Destination, blocked, screen


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.0.0.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1",
        "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1",
        "2002:7f00:1::",  # 6to4 carrying 127.0.0.1
        "2002:a00:1::",  # 6to4 carrying 10.0.0.1
        "2002:a9fe:a9fe::",  # 6to4 carrying 169.254.169.254
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo, its client 192.0.2.45 (documentation)
        "not an address",
    ],
)  # fmt: skip
def test_addresses_that_are_not_public_or_carry_one_that_is_not_are_blocked(address: str) -> None:
    assert blocked(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700::1111", "2002:808:808::"])
def test_public_addresses_are_not_blocked(address: str) -> None:
    assert not blocked(address)


@pytest.mark.parametrize(
    "url",
    ["http://[2002:7f00:1::]/hook", "http://127.0.0.1:9/hook", "http://localhost/hook",
     "http://[::ffff:7f00:1]/", "ftp://example.com/hook", "http:///nohost", "http://h:99999/",
     "http://name.invalid/hook"],
)  # fmt: skip
async def test_screen_refuses_what_is_not_a_public_http_url(url: str) -> None:
    assert await screen(url) is None


async def test_screen_with_private_allowed_resolves_once_to_an_address() -> None:
    destination = await screen("http://localhost:9/hook", allow_private=True)
    assert destination is not None
    assert destination.address in ("127.0.0.1", "::1")


async def test_a_destination_is_called_at_its_address_under_its_own_name() -> None:
    """A name that resolves nowhere (``.invalid``) is reached at the pinned address, and the
    server sees the name in ``Host``: nothing was looked up again."""
    seen: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        destination = Destination(f"http://hooks.invalid:{port}/push?x=1", "127.0.0.1")
        url, headers, extensions = destination.request()
        assert url == f"http://127.0.0.1:{port}/push?x=1"
        async with httpx.AsyncClient() as http:
            response = await http.post(url, json={}, headers=headers, extensions=extensions)
    assert response.status_code == 204
    request = seen[0].decode().lower()
    assert request.startswith("post /push?x=1 http/1.1")
    assert f"\r\nhost: hooks.invalid:{port}\r\n" in request


def test_an_https_destination_names_its_host_for_tls() -> None:
    url, headers, extensions = Destination("https://hooks.example/p", "2606:4700::1111").request()
    assert url == "https://[2606:4700::1111]/p"
    assert headers == {"Host": "hooks.example"}
    assert extensions == {"sni_hostname": "hooks.example"}
