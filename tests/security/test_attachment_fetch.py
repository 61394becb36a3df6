"""``bridge.telegram.attachments``: the SSRF guard for agents' attachment URLs, unit by unit.

``check_url`` for every kind of private address and every non-http scheme; ``fetch`` for
redirects (each hop re-checked, other schemes refused), size caps (a 60 MB stream is cut off
without being read), and only ever ``AttachmentError`` for a bad URL.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from bridge.telegram.attachments import (
    AttachmentError,
    BlockedAddress,
    GuardedResolver,
    _fetch,
    check_url,
    fetch,
)
from tests.e2e.conftest import free_port

PUBLIC_IP = "93.184.216.34"

PRIVATE_URLS = [
    "http://127.0.0.1/x.png",
    "http://127.0.0.2:8080/x.png",
    "http://127.1/",
    "http://2130706433/",  # 127.0.0.1 as one number
    "http://0x7f000001/",
    "http://017700000001/",
    "http://0177.0.0.1/",
    "http://0/",
    "http://0.0.0.0:22/",
    "http://localhost/x.png",  # a name that resolves to loopback
    "http://LocalHost:80/x.png",
    "http://user:pass@localhost/x.png",
    "http://10.0.0.1/x.png",
    "http://10.255.255.255/",
    "http://172.16.0.1/",
    "http://172.31.255.254/",
    "http://192.168.0.1/x.png",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://[::1]/x.png",
    "http://[::1]:8080/x.png",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[0:0:0:0:0:ffff:7f00:1]/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[fe80::1]/",
    "https://127.0.0.1/x.png",
    "https://[::1]:443/",
    "HTTP://127.0.0.1/",
    "http://①②⑦.0.0.1/",  # fullwidth digits: IDNA makes them 127.0.0.1
    "http://127。0。0。1/",
    "http://93.184.216.34\\@127.0.0.1/",
]
OTHER_SCHEMES = [
    "file:///etc/passwd",
    "file://localhost/etc/passwd",
    "FILE:///etc/shadow",
    "ftp://127.0.0.1/x",
    "ftp://example.com/x.png",
    "gopher://127.0.0.1:6379/_FLUSHALL",
    "dict://127.0.0.1:11211/stats",
    "ldap://127.0.0.1/",
    "data:image/png;base64,iVBORw0KGgo=",
    "javascript:alert(1)",
    "jar:file:///x!/y",
    "netdoc:///etc/passwd",
    "//127.0.0.1/x.png",
    "/etc/passwd",
    "../../etc/passwd",
    "127.0.0.1/x.png",
    "http:///x.png",
    "http://",
    "",
    "tg://user?id=1",
    "mailto:a@example.com",
]


@pytest.mark.parametrize("url", PRIVATE_URLS + OTHER_SCHEMES)
async def test_check_url_refuses(url: str) -> None:
    with pytest.raises(AttachmentError):
        await check_url(url, allow_private=False)


@pytest.mark.parametrize("url", OTHER_SCHEMES)
async def test_other_schemes_are_refused_even_when_private_addresses_are_allowed(url: str) -> None:
    with pytest.raises(AttachmentError) as caught:
        await check_url(url, allow_private=True)
    assert not caught.value.transient


@pytest.mark.parametrize(
    "url",
    [
        f"http://{PUBLIC_IP}/x.png",
        f"https://{PUBLIC_IP}:8443/a/b.jpg?x=1",
        "https://[2606:4700:4700::1111]/x.png",
    ],
)
async def test_check_url_lets_public_addresses_through(url: str) -> None:
    await check_url(url, allow_private=False)


@pytest.mark.parametrize("url", ["http://127.0.0.1/", "http://[::1]/", "http://10.0.0.1/"])
async def test_private_addresses_are_permanent_refusals(url: str) -> None:
    with pytest.raises(AttachmentError) as caught:
        await check_url(url, allow_private=False)
    assert not caught.value.transient  # retrying cannot make them acceptable


@pytest.mark.parametrize(
    "url", ["http://[::127.0.0.1]/", "http://[64:ff9b::7f00:1]/", "http://[2002:7f00:1::]/"]
)
async def test_ipv6_forms_embedding_private_ipv4_are_refused(url: str) -> None:
    with pytest.raises(AttachmentError):
        await check_url(url, allow_private=False)


# --- fetch -----------------------------------------------------------------------------


class Origin:
    """A local server: /ok, /redirect?to=..., /loop, /nolocation, /huge (streamed), /long
    (Content-Length says 60 MB).  Records the paths asked and the bytes it wrote."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.written = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.paths.append(request.path_qs)
        name = request.match_info["name"]
        if name == "ok":
            return web.Response(body=b"PNGDATA", content_type="image/png")
        if name == "redirect":
            raise web.HTTPFound(request.query["to"])
        if name == "loop":
            raise web.HTTPFound("/loop")
        if name == "nolocation":
            return web.Response(status=302)
        response = web.StreamResponse()
        response.content_type = "application/octet-stream"
        if name == "long":
            response.content_length = 60 * 1024 * 1024
        await response.prepare(request)
        chunk = b"\0" * (1024 * 1024)
        try:
            for _ in range(60):
                await response.write(chunk)
                self.written += len(chunk)
        except (ConnectionError, RuntimeError):
            pass
        return response


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    server = Origin()
    app = web.Application()
    app.router.add_get("/{name}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", server.port).start()
    yield server
    await runner.cleanup()


async def test_fetch_reads_an_allowed_url(origin: Origin) -> None:
    async with aiohttp.ClientSession() as http:
        got = await fetch(http, f"{origin.url}/ok", max_bytes=1000, allow_private=True)
    assert (got.data, got.content_type) == (b"PNGDATA", "image/png")


@pytest.mark.parametrize(
    "to",
    [
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_x",
        "ftp://127.0.0.1/x",
        "data:text/plain,hi",
        "javascript:alert(1)",
        "dict://127.0.0.1:11211/",
    ],
)
async def test_a_redirect_to_another_scheme_is_refused(origin: Origin, to: str) -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(AttachmentError) as caught:
            await fetch(http, f"{origin.url}/redirect?to={to}", max_bytes=1000, allow_private=True)
    assert "non-http" in str(caught.value)


async def test_redirect_loops_and_missing_locations_end(origin: Origin) -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(AttachmentError, match="too many redirects"):
            await fetch(http, f"{origin.url}/loop", max_bytes=1000, allow_private=True)
        with pytest.raises(AttachmentError, match="without a location"):
            await fetch(http, f"{origin.url}/nolocation", max_bytes=1000, allow_private=True)
    assert len(origin.paths) == 5  # the first hop and three redirects, then one more


class _ToLoopback(AbstractResolver):
    """The client's DNS: every name is the local origin (a public-looking name that turns
    out to point at the server we stand up)."""

    async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host, host="127.0.0.1", port=port, family=socket.AF_INET, proto=0, flags=0
            )
        ]

    async def close(self) -> None:
        pass


@pytest.fixture
def public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """check_url's resolution: ``*.public.test`` is a public address."""
    real = socket.getaddrinfo

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith("public.test"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_IP, port or 80))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


async def test_every_redirect_hop_is_checked_again(origin: Origin, public_dns: None) -> None:
    """A public URL that redirects to a private address is refused at the second hop."""
    start = f"http://cdn.public.test:{origin.port}/redirect?to="
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(resolver=_ToLoopback())
    ) as http:
        # The session's resolver stands in for a public CDN (the first hop); every hop's
        # address is checked again, so a redirect to a private address is refused.
        for to in (
            f"http://127.0.0.1:{origin.port}/ok",
            f"http://[::1]:{origin.port}/ok",
            "http://169.254.169.254/latest/meta-data/",
        ):
            with pytest.raises(AttachmentError, match="private or loopback"):
                await _fetch(http, start + to, 1000, False, 5.0)
    assert not [p for p in origin.paths if p == "/ok"]


async def test_names_resolving_to_private_addresses_are_refused() -> None:
    """The guarded resolver is what the connection uses: no second lookup to rebind."""
    resolver = GuardedResolver()
    try:
        for name in ("localhost", "LocalHost"):
            with pytest.raises(BlockedAddress):
                await resolver.resolve(name, 80)
    finally:
        await resolver.close()
    with pytest.raises(AttachmentError, match="private or loopback"):
        await fetch(None, "http://localhost:9/x.png", max_bytes=10)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["huge", "long"])
async def test_an_oversized_attachment_is_cut_off(origin: Origin, name: str) -> None:
    """60 MB offered (streamed without a length, or announced), 20 MiB allowed: refused
    without reading it all."""
    started = time.monotonic()
    async with aiohttp.ClientSession() as http:
        with pytest.raises(AttachmentError, match="size limit"):
            await fetch(
                http, f"{origin.url}/{name}", max_bytes=20 * 1024 * 1024, allow_private=True
            )
    await asyncio.sleep(0.2)  # the server notices the closed connection
    assert time.monotonic() - started < 10
    assert origin.written < 40 * 1024 * 1024, origin.written
    if name == "long":  # announced: refused before the body
        assert origin.written < 20 * 1024 * 1024, origin.written


LONG_LABEL = "http://" + "a" * 300 + ".com/x.png"
BAD_URLS = [
    "http://[::1/x.png",  # unbalanced IPv6 bracket
    "http://example.com:99999/x.png",  # port out of range
    "http://exa mple.com/x.png",
    "http://127.0.0.1\\@93.184.216.34/x.png",
    "http://%zz/x.png",
    "http://[fe80::1%25eth0]/x.png",
    LONG_LABEL,
    "http://\x00/x.png",
]


@pytest.mark.parametrize("url", BAD_URLS, ids=lambda url: url if len(url) < 60 else "long-label")
@pytest.mark.parametrize("allow_private", [False, True])
async def test_a_bad_url_is_an_attachment_error(url: str, allow_private: bool) -> None:
    """Anything else escapes TelegramSender._fetch, crashes the inbound handler and is
    retried, blocking the customer's later messages."""
    async with aiohttp.ClientSession() as http:
        with pytest.raises(AttachmentError):
            await asyncio.wait_for(
                fetch(http, url, max_bytes=1000, allow_private=allow_private, timeout=2), 5
            )
