"""The bridge killed with SIGKILL mid-flight and restarted: everything delivered once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bridge.sandbox.telegram_sim import TelegramSimulator
from tests.e2e.conftest import BOT_TOKEN, PUSH_SECRET, free_port, start_udesk
from tests.processes import BridgeProcess, bridge_env

USER = {"id": 7001, "first_name": "Kim", "language_code": "en"}
TOKEN = "tg-7001"


@pytest.fixture
async def crashable(database_url: str, tmp_path: Path) -> AsyncIterator[tuple]:
    port, udesk_port = free_port(), free_port()
    udesk, runner = await start_udesk(
        udesk_port, f"http://127.0.0.1:{port}/udesk/push/{PUSH_SECRET}"
    )
    udesk.set_agent(1, "Tom", capacity=5)
    telegram = TelegramSimulator(bot_token=BOT_TOKEN)
    root = await telegram.start()
    env = bridge_env(database_url, tmp_path / "media", port, udesk_port, root)
    bridge = BridgeProcess(env, port)
    try:
        yield bridge, udesk, telegram
    finally:
        await bridge.stop()
        await telegram.stop()
        await runner.cleanup()


async def _wait(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_killed_while_sending_then_restarted_delivers_exactly_once(crashable: tuple) -> None:
    bridge, udesk, telegram = crashable
    await bridge.start()
    telegram.inject_text(USER, "one")
    await _wait(lambda: len(udesk.messages_for(TOKEN)) == 1)
    # Udesk becomes slow: the next sends are in flight when the bridge dies.
    udesk.inject_fault("/im/messages", "latency", delay=1.5)
    for text in ("two", "three"):
        telegram.inject_text(USER, text)
    await _wait(lambda: len(udesk.calls_to("/im/messages")) >= 2)
    await bridge.kill()
    udesk.clear_faults()
    await bridge.start()
    await _wait(lambda: len(udesk.messages_for(TOKEN)) == 3, timeout=30)
    await asyncio.sleep(1.0)  # anything sent twice would show up by now
    assert [m.data["content"] for m in udesk.messages_for(TOKEN)] == ["one", "two", "three"]


async def test_killed_between_storing_and_sending(crashable: tuple) -> None:
    bridge, udesk, telegram = crashable
    udesk.inject_fault("/im/sessions", "latency", delay=3)
    await bridge.start()
    telegram.inject_text(USER, "stored before the crash")
    await _wait(lambda: len(udesk.calls_to("/im/sessions")) >= 1)
    await bridge.kill()
    udesk.clear_faults()
    await bridge.start()
    await _wait(lambda: len(udesk.messages_for(TOKEN)) == 1, timeout=30)
    await asyncio.sleep(1.0)
    assert [m.data["content"] for m in udesk.messages_for(TOKEN)] == ["stored before the crash"]
