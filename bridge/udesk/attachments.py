"""Fetching an agent's attachment ourselves, safely, when Telegram cannot fetch the URL.

The URL comes from a Udesk push, which we accept from the internet, so it is untrusted:
http(s) only, a size cap, no private, loopback or link-local addresses (checked on every
redirect hop, after DNS resolution) unless the operator explicitly allows them.
aiohttp has no such guard built in, hence this small module.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

import aiohttp

MAX_REDIRECTS = 3


class AttachmentError(Exception):
    """The attachment cannot be fetched; ``transient`` when worth trying again."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class Attachment:
    data: bytes
    content_type: str
    filename: str


def _blocked(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


async def check_url(url: str, *, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AttachmentError(f"refusing a non-http(s) URL ({parts.scheme or 'no scheme'})")
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname,
            parts.port or (443 if parts.scheme == "https" else 80),
            type=socket.SOCK_STREAM,
        )
    except OSError as exc:
        raise AttachmentError(f"cannot resolve {parts.hostname}", transient=True) from exc
    for info in infos:
        if _blocked(str(info[4][0])):
            raise AttachmentError(f"refusing a private or loopback address for {parts.hostname}")


async def fetch(
    session: aiohttp.ClientSession,
    url: str,
    *,
    max_bytes: int,
    allow_private: bool = False,
    timeout: float = 30.0,
) -> Attachment:
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        await check_url(current, allow_private=allow_private)
        try:
            async with session.get(
                current,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                if response.status in (301, 302, 303, 307, 308):
                    location = response.headers.get("Location")
                    if not location:
                        raise AttachmentError("redirect without a location")
                    current = urljoin(current, location)
                    continue
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
                name = unquote(urlsplit(current).path.rsplit("/", 1)[-1]) or "file"
                return Attachment(bytes(data), content_type, name[:120])
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AttachmentError(f"download failed: {type(exc).__name__}", transient=True) from exc
    raise AttachmentError("too many redirects")
