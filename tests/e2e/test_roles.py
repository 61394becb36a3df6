"""BRIDGE_ROLE: an intake process (Telegram updates in, pushes answered) and a worker process
(everything sent) on one PostgreSQL do together what one process does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bridge.sandbox.telegram_sim import TelegramSimulator
from tests.e2e.conftest import BOT_TOKEN, PUSH_SECRET, free_port, start_udesk
from tests.processes import BridgeProcess, bridge_env

CUSTOMERS = 4
MESSAGES = 5


async def _wait(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@pytest.fixture
async def split(pg_url: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    intake_port, worker_port, udesk_port = free_port(), free_port(), free_port()
    # Udesk pushes go to the intake process, as a proxy would route them.
    udesk, udesk_runner = await start_udesk(
        udesk_port, f"http://127.0.0.1:{intake_port}/udesk/push/{PUSH_SECRET}"
    )
    udesk.set_agent(1, "Tom", capacity=100)
    telegram = TelegramSimulator(bot_token=BOT_TOKEN)
    root = await telegram.start()
    media = tmp_path / "media"
    processes = {
        role: BridgeProcess(
            bridge_env(pg_url, media, port, udesk_port, root, BRIDGE_ROLE=role),
            port,
            log=tmp_path / f"{role}.log",
        )
        for role, port in (("intake", intake_port), ("worker", worker_port))
    }
    try:
        for process in processes.values():  # inside: one failing to start stops the other
            await process.start()
        yield {"udesk": udesk, "telegram": telegram, **processes}
    finally:
        for process in processes.values():
            await process.stop()
        await telegram.stop()
        await udesk_runner.cleanup()


@pytest.mark.timeout(90)
async def test_intake_and_worker_processes_carry_both_directions(split: dict[str, Any]) -> None:
    udesk, telegram = split["udesk"], split["telegram"]
    users = [{"id": 7100 + i, "first_name": f"R{i}"} for i in range(CUSTOMERS)]
    for n in range(MESSAGES):
        for user in users:
            telegram.inject_text(user, f"{user['id']}:{n}")
    for user in users:
        token = f"tg-{user['id']}"
        await _wait(lambda t=token: len(udesk.messages_for(t)) >= MESSAGES, "customer messages")
        texts = [str(m.data.get("content")) for m in udesk.messages_for(token)]
        assert texts == [f"{user['id']}:{n}" for n in range(MESSAGES)]  # once, in order
        for n in range(3):
            await udesk.agent_reply(token, f"reply {user['id']}:{n}")
    for user in users:
        chat = user["id"]

        def replies(c: int = chat) -> list[str]:
            return [m.text for m in telegram.sent(c) if m.text and m.text.startswith("reply")]

        await _wait(lambda r=replies: len(r()) >= 3, "agent replies")
        assert replies() == [f"reply {chat}:{n}" for n in range(3)]
    # Only the worker sends: with it stopped, a reply is stored (pushed to the intake) and
    # waits; started again, the worker delivers it.
    chat, token = users[0]["id"], f"tg-{users[0]['id']}"
    await split["worker"].stop()
    await udesk.agent_reply(token, "reply while the worker is away")
    await asyncio.sleep(1.5)
    assert "reply while the worker is away" not in [m.text for m in telegram.sent(chat)]
    await split["worker"].start()
    await _wait(
        lambda: "reply while the worker is away" in [m.text for m in telegram.sent(chat)],
        "the stored reply",
    )
