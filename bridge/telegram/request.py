"""PTB's HTTP requests made with aiohttp instead of httpx.

PTB sends through ``BaseRequest``, its documented extension point for other HTTP clients;
its own ``HTTPXRequest`` is the default.  On a busy bridge httpx and httpcore were the
largest single cost of a delivered message (a quarter of the CPU: per-request connection
checks, anyio streams), while aiohttp, which the bridge already uses for Udesk and its web
server, does the same request for a fraction of that.  PTB itself (``Bot``, the rate
limiter, error parsing, retries) is unchanged: this class only moves bytes, and maps
aiohttp's failures onto PTB's ``TimedOut`` and ``NetworkError`` as ``HTTPXRequest`` does.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData


class AiohttpRequest(BaseRequest):
    def __init__(
        self,
        *,
        connection_pool_size: int = 32,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 30.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self.pool_size = connection_pool_size
        self._read = read_timeout
        self._write = write_timeout
        self._connect = connect_timeout
        self._pool = pool_timeout
        self._media_write = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.pool_size)
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": self.USER_AGENT}
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        fields = request_data.json_parameters if request_data else None
        read = self._read if isinstance(read_timeout, DefaultValue) else read_timeout
        connect = self._connect if isinstance(connect_timeout, DefaultValue) else connect_timeout
        pool = self._pool if isinstance(pool_timeout, DefaultValue) else pool_timeout
        write = write_timeout
        if isinstance(write, DefaultValue):
            write = self._media_write if files else self._write
        # aiohttp has no separate write timeout: the write and the answer share sock_read's
        # budget; a connection from the pool and its opening share ``connect``.
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=_sum(connect, pool),
            sock_connect=connect,
            sock_read=_sum(read, write if files else None),
        )
        body: Any = None
        headers: dict[str, str] | None = None
        if files:
            form = aiohttp.FormData()
            for name, value in (fields or {}).items():
                form.add_field(name, value)
            for name, (filename, content, mimetype) in files.items():
                form.add_field(name, content, filename=filename, content_type=mimetype)
            body = form
        elif request_data is not None and fields:
            # Form-encoded, as Telegram's Bot API and PTB expect, by PTB's own encoder: a
            # dict handed to aiohttp went through a FormData built per request, a twentieth
            # of the CPU of a delivered message.
            body = request_data.url_encoded_parameters().encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
        try:
            # Never follow a redirect, as PTB's own HTTPXRequest does not: the bot token is
            # in the URL's path, and a proxy or portal answering 302 would have it sent on
            # to another host.  The 3xx goes back to PTB, which raises NetworkError.
            async with self._session.request(
                method, url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                return response.status, await response.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as err:
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{type(err).__name__}: {err}") from err


def _sum(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return a if b is None else b
    return a + b
