"""The fault matrix's rigs: the two simulators and the bridge between them.

``rig`` is the e2e ``world`` on PostgreSQL with short timeouts (UDESK_TIMEOUT=1s,
QUEUE_LEASE=2s) so a fault costs seconds, not minutes; ``open_rig`` makes variants.
``sims`` is the two simulators alone, for tests that run ``udesk-bridge run`` as a child
process (tests.processes.BridgeProcess).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.app import BridgeApp
from bridge.sandbox.telegram_sim import TelegramSimulator
from bridge.sandbox.udesk_sim import UdeskSimulator
from bridge.settings import Settings
from tests.e2e.conftest import BOT_TOKEN, PUSH_SECRET, bridge_settings, free_port, start_udesk

FAST = {"udesk_timeout": 1, "queue_lease": 2}


@dataclass
class Rig:
    udesk: UdeskSimulator
    telegram: TelegramSimulator
    bridge: BridgeApp
    bridge_url: str
    settings: Settings
    database_url: str


@dataclass
class Sims:
    """The simulators, with the port the bridge process must listen on."""

    udesk: UdeskSimulator
    udesk_port: int
    telegram: TelegramSimulator
    telegram_root: str
    bridge_port: int

    @property
    def bridge_url(self) -> str:
        return f"http://127.0.0.1:{self.bridge_port}"


@contextlib.asynccontextmanager
async def open_sims() -> AsyncIterator[Sims]:
    bridge_port, udesk_port = free_port(), free_port()
    udesk, runner = await start_udesk(
        udesk_port, f"http://127.0.0.1:{bridge_port}/udesk/push/{PUSH_SECRET}"
    )
    udesk.set_agent(1, "Tom", online=True, capacity=50)
    telegram = TelegramSimulator(bot_token=BOT_TOKEN, bot_username="udesk_test_bot")
    root = await telegram.start()
    try:
        yield Sims(udesk, udesk_port, telegram, root, bridge_port)
    finally:
        await telegram.stop()
        await runner.cleanup()


@contextlib.asynccontextmanager
async def open_rig(
    database_url: str,
    media_dir: Path,
    *,
    before_start: Callable[[Sims], None] | None = None,
    **overrides: Any,
) -> AsyncIterator[Rig]:
    """Simulators plus the real BridgeApp in-process; ``overrides`` are Settings fields;
    ``before_start`` prepares the simulators (e.g. a fault) before the bridge starts."""
    async with open_sims() as sims:
        if before_start is not None:
            before_start(sims)
        settings = bridge_settings(
            database_url,
            media_dir,
            sims.bridge_port,
            sims.udesk_port,
            sims.telegram_root,
            **(FAST | overrides),
        )
        bridge = BridgeApp(settings, run_migrations=False)
        await bridge.start()
        try:
            yield Rig(sims.udesk, sims.telegram, bridge, sims.bridge_url, settings, database_url)
        finally:
            await bridge.stop()
