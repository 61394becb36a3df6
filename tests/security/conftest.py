"""Worlds for the security checks: the e2e world with other settings.

* ``world``: the e2e world (polling, no ADMIN_TOKEN, private media URLs allowed).
* ``hardened``: webhook mode with a secret, ADMIN_TOKEN set, ALLOW_PRIVATE_MEDIA_URLS false,
  and a Telegram simulator that cannot fetch URLs itself (like the real Telegram, which
  cannot reach the bridge's private network): every agent attachment URL then goes through
  the bridge's own fetch and its SSRF guard.

Both run on SQLite only: what they check does not depend on the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bridge.sandbox.telegram_sim.botapi import BotApi
from bridge.sandbox.telegram_sim.state import bad_request
from tests.e2e.conftest import (
    World,
    free_port,
    open_world,
)

ADMIN_TOKEN = "admin-token-for-security-tests-0123456789"
WEBHOOK_SECRET = "webhook-secret-for-security-tests"


@asynccontextmanager
async def make_world(database_url: str, tmp_path: Path, **extra: Any) -> AsyncIterator[World]:
    async with open_world(database_url, tmp_path / "media", **extra) as w:
        yield w


@pytest.fixture
async def world(sqlite_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with make_world(sqlite_url, tmp_path) as w:
        yield w


@pytest.fixture
def telegram_cannot_fetch_urls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The simulated Telegram refuses every URL (and records it), as the real one does for
    addresses it cannot reach: the bridge must then fetch the attachment itself."""
    asked: list[str] = []

    async def refuse(self: BotApi, url: str, kind: str) -> Any:
        asked.append(url)
        raise bad_request("failed to get HTTP URL content")

    monkeypatch.setattr(BotApi, "_download", refuse)
    return asked


@pytest.fixture
async def hardened(
    sqlite_url: str, tmp_path: Path, telegram_cannot_fetch_urls: list[str]
) -> AsyncIterator[World]:
    async with make_world(
        sqlite_url,
        tmp_path,
        telegram_mode="webhook",
        telegram_webhook_secret=WEBHOOK_SECRET,
        admin_token=ADMIN_TOKEN,
        allow_private_media_urls=False,
    ) as w:
        # The webhook is registered at start; the simulator delivers updates to it.
        await w.eventually(lambda: w.telegram.webhook_info().get("url"), what="setWebhook")
        yield w


class TargetServer:
    """A local HTTP server standing for an internal service: records every request."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.port = free_port()
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(f"{request.host} {request.method} {request.path_qs}")
        return web.Response(body=b"INTERNAL-SECRET-CONTENT", content_type="image/png")

    async def start(self, hosts: tuple[str, ...]) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        for host in hosts:
            try:
                await web.TCPSite(self.runner, host, self.port).start()
            except OSError:  # no IPv6 here
                continue

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def target() -> AsyncIterator[TargetServer]:
    server = TargetServer()
    await server.start(("127.0.0.1", "127.0.0.2", "::1"))
    yield server
    await server.stop()


async def settle(seconds: float = 0.3) -> None:
    await asyncio.sleep(seconds)
