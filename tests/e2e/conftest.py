"""The whole bridge between the two simulators, over real HTTP, on a real database.

``world`` starts the Udesk simulator, the Telegram Bot API simulator and the bridge's real
``BridgeApp`` (the ``run`` code path) pointed at them, and stops all three afterwards.
"""

from __future__ import annotations

import contextlib
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web

from bridge.app import BridgeApp
from bridge.sandbox.telegram_sim import TelegramSimulator
from bridge.sandbox.udesk_sim import UdeskSimulator
from bridge.settings import Settings
from tests.waiting import eventually

BOT_TOKEN = "123456:TEST-token-for-the-bridge-tests-xyz"
UDESK_EMAIL = "admin@example.com"
UDESK_TOKEN = "udesk-api-token-for-tests"
# At least 32 characters: the bridge refuses shorter push secrets (and admin tokens).
PUSH_SECRET = "push-secret-for-the-bridge-tests-0123456789"

T = TypeVar("T")


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free port below the kernel's ephemeral range: a port the OS handed out for binding
    could be taken by an outgoing connection before our server binds it."""
    ports = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    low = int(ports[0])
    for _ in range(200):
        port = random.randint(max(1024, low - 12000), low - 1)
        if port in _HANDED_OUT:
            continue  # free now, but promised to a server that may not have bound it yet
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("no free port found")


@dataclass
class World:
    udesk: UdeskSimulator
    telegram: TelegramSimulator
    bridge: BridgeApp
    bridge_url: str
    udesk_url: str
    settings: Settings

    async def eventually(
        self, probe: Callable[[], T | Awaitable[T]], *, timeout: float = 10.0, what: str = ""
    ) -> T:
        """Poll ``probe`` until it returns something truthy (``tests.waiting``)."""
        return await eventually(probe, timeout=timeout, what=what)  # type: ignore[arg-type,no-any-return]

    def texts_to(self, chat_id: int) -> list[str]:
        return [m.text or m.caption or "" for m in self.telegram.sent(chat_id)]


async def start_udesk(port: int, push_url: str) -> tuple[UdeskSimulator, web.AppRunner]:
    sim = UdeskSimulator(email=UDESK_EMAIL, api_token=UDESK_TOKEN, push_url=push_url)
    runner = web.AppRunner(sim.app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return sim, runner


def bridge_settings(
    database_url: str,
    media_dir: Path,
    bridge_port: int,
    udesk_port: int,
    tg_root: str,
    **extra: Any,
) -> Settings:
    values: dict[str, Any] = {
        "telegram_bot_token": BOT_TOKEN,
        "telegram_api_url": tg_root,
        "udesk_api_url": f"http://127.0.0.1:{udesk_port}/open_api_v1",
        "udesk_email": UDESK_EMAIL,
        "udesk_api_token": UDESK_TOKEN,
        "udesk_push_secret": PUSH_SECRET,
        "udesk_rate_limit": "unlimited",
        "telegram_rate_limit": "unlimited",
        "telegram_chat_rate_limit": "unlimited",
        "udesk_timeout": 3,
        "database_url": database_url,
        "bridge_host": "127.0.0.1",
        "bridge_port": bridge_port,
        "public_url": f"http://127.0.0.1:{bridge_port}",
        "media_dir": str(media_dir),
        "album_debounce": 0.3,
        "queue_poll_interval": 0.5,
        "allow_private_media_urls": True,
        "log_format": "console",
    }
    values.update(extra)
    return Settings(**values)


@contextlib.asynccontextmanager
async def open_world(
    database_url: str,
    media_dir: Path,
    *,
    start_bridge: bool = True,
    prepare: Callable[[UdeskSimulator], None] | None = None,
    **settings: Any,
) -> AsyncIterator[World]:
    """Both simulators and the real ``BridgeApp`` between them: the one test world every
    suite builds on.  ``settings`` override ``bridge_settings``' values; ``prepare`` sets
    up Udesk (agents, groups) before the bridge starts; without ``start_bridge`` the test
    starts it itself."""
    bridge_port = free_port()
    udesk_port = free_port()
    bridge_url = f"http://127.0.0.1:{bridge_port}"
    udesk, udesk_runner = await start_udesk(udesk_port, f"{bridge_url}/udesk/push/{PUSH_SECRET}")
    udesk.set_agent(1, "Tom", online=True, capacity=5)
    if prepare is not None:
        prepare(udesk)
    telegram = TelegramSimulator(bot_token=BOT_TOKEN, bot_username="udesk_test_bot")
    tg_root = await telegram.start()
    values = bridge_settings(database_url, media_dir, bridge_port, udesk_port, tg_root, **settings)
    bridge = BridgeApp(values, run_migrations=False)
    try:
        if start_bridge:
            await bridge.start()
        yield World(udesk, telegram, bridge, bridge_url, f"http://127.0.0.1:{udesk_port}", values)
    finally:
        await bridge.stop()
        await telegram.stop()
        await udesk_runner.cleanup()


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(database_url, tmp_path / "media") as w:
        yield w
