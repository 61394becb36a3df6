"""Fixtures for the privacy tests: the e2e ``world`` and a variant with the admin API and
/forget on (and the background purge off, so the tests decide when to purge)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.app import BridgeApp
from bridge.sandbox.telegram_sim import TelegramSimulator
from tests.e2e.conftest import (
    BOT_TOKEN,
    PUSH_SECRET,
    World,
    bridge_settings,
    free_port,
    start_udesk,
    world,  # noqa: F401  (the e2e fixture, used here as is)
)

ADMIN_TOKEN = "admin-token-for-the-privacy-tests"


@pytest.fixture
async def pworld(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    bridge_port = free_port()
    udesk_port = free_port()
    bridge_url = f"http://127.0.0.1:{bridge_port}"
    udesk, udesk_runner = await start_udesk(udesk_port, f"{bridge_url}/udesk/push/{PUSH_SECRET}")
    udesk.set_agent(1, "Tom", online=True, capacity=5)
    telegram = TelegramSimulator(bot_token=BOT_TOKEN, bot_username="udesk_test_bot")
    tg_root = await telegram.start()
    settings = bridge_settings(
        database_url,
        tmp_path / "media",
        bridge_port,
        udesk_port,
        tg_root,
        admin_token=ADMIN_TOKEN,
        forget_command=True,
        purge_interval=0,
    )
    bridge = BridgeApp(settings, run_migrations=False)
    await bridge.start()
    try:
        yield World(udesk, telegram, bridge, bridge_url, f"http://127.0.0.1:{udesk_port}", settings)
    finally:
        await bridge.stop()
        await telegram.stop()
        await udesk_runner.cleanup()
