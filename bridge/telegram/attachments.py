"""Fetching an agent's attachment ourselves, safely, when Telegram cannot fetch the URL.

The URL comes from a Udesk push, which we accept from the internet, so it is untrusted:
http(s) only, a size cap, no private, loopback or link-local addresses unless the operator
explicitly allows them.  The address check happens in the resolver the connection itself
uses (``GuardedResolver``), so the connection goes to exactly the address that was checked:
a name that answers a public address to a first lookup and 127.0.0.1 to the next (DNS
rebinding) cannot get through.  Every redirect hop goes through the same check.
aiohttp has no such guard built in, hence this small module.

It belongs to the Telegram edge: the only download is of a file the bridge then sends to
Telegram itself (``bridge.telegram.gateway``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

MAX_REDIRECTS = 3
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AttachmentError(Exception):
    """The attachment cannot be fetched; ``transient`` when worth trying again."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class BlockedAddress(OSError):
    """The name resolved only to addresses we refuse to connect to."""


@dataclass(frozen=True)
class Attachment:
    data: bytes
    content_type: str
    filename: str


def _embedded_v4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address can lead to (mapped, 6to4, NAT64, compatible)."""
    found = [a for a in (ip.ipv4_mapped, ip.sixtofour) if a is not None]
    if ip in _NAT64 or int(ip) < 2**32:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def blocked(address: str) -> bool:
    """True for anything but a global unicast address (and IPv6 forms hiding one)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if any(blocked(str(v4)) for v4 in _embedded_v4(ip)):
            return True
    return not ip.is_global or ip.is_multicast


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, keeping only the addresses we may connect to."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            results = await self._inner.resolve(host, port, family)
        except (UnicodeError, ValueError) as exc:  # e.g. a label over 63 characters
            raise BlockedAddress(f"invalid host name: {type(exc).__name__}") from None
        allowed = [r for r in results if not blocked(str(r["host"]))]
        if not allowed:
            raise BlockedAddress("refusing a private or loopback address")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


async def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse what we will not fetch, before any connection: other schemes, and hosts that
    resolve to private addresses.  (The connection's own resolver checks again, so an
    answer that changes between the two lookups gains nothing.)"""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise AttachmentError(f"invalid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise AttachmentError(f"refusing a non-http(s) URL ({parts.scheme or 'no scheme'})")
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except (UnicodeError, ValueError) as exc:
        raise AttachmentError(f"invalid host name ({type(exc).__name__})") from None
    except OSError as exc:
        raise AttachmentError(f"cannot resolve {host}", transient=True) from exc
    if any(blocked(str(info[4][0])) for info in infos):
        raise AttachmentError(f"refusing a private or loopback address for {host}")


async def fetch(
    session: aiohttp.ClientSession,
    url: str,
    *,
    max_bytes: int,
    allow_private: bool = False,
    timeout: float = 30.0,
) -> Attachment:
    """Download ``url``; ``session`` is used only where private addresses are allowed,
    otherwise a session whose connector resolves through GuardedResolver."""
    if allow_private:
        return await _fetch(session, url, max_bytes, True, timeout)
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(), use_dns_cache=False)
    async with aiohttp.ClientSession(connector=connector) as guarded:
        return await _fetch(guarded, url, max_bytes, False, timeout)


async def _fetch(
    session: aiohttp.ClientSession, url: str, max_bytes: int, allow_private: bool, timeout: float
) -> Attachment:
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        await check_url(current, allow_private=allow_private)
        try:
            async with session.get(
                current, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                if response.status in (301, 302, 303, 307, 308):
                    location = response.headers.get("Location")
                    if not location:
                        raise AttachmentError("redirect without a location")
                    current = urljoin(current, location)
                    continue
                return await _read(response, current, max_bytes)
        except AttachmentError:
            raise
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, BlockedAddress):
                raise AttachmentError(str(exc.os_error)) from None
            raise AttachmentError("cannot connect", transient=True) from exc
        except (aiohttp.InvalidURL, ValueError, UnicodeError) as exc:
            # A URL aiohttp will never fetch: retrying cannot help.
            raise AttachmentError(f"invalid URL ({type(exc).__name__})") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AttachmentError(f"download failed: {type(exc).__name__}", transient=True) from exc
    raise AttachmentError("too many redirects")


async def _read(response: Any, url: str, max_bytes: int) -> Attachment:
    if response.status >= 500:
        raise AttachmentError(f"HTTP {response.status}", transient=True)
    if response.status != 200:
        raise AttachmentError(f"HTTP {response.status}")
    if (response.content_length or 0) > max_bytes:
        raise AttachmentError("attachment over the size limit")
    data = bytearray()
    async for chunk in response.content.iter_chunked(65536):
        data += chunk
        if len(data) > max_bytes:
            raise AttachmentError("attachment over the size limit")
    content_type = response.content_type or "application/octet-stream"
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or "file"
    return Attachment(bytes(data), content_type, name[:120])
