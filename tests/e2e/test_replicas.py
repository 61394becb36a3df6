"""Several bridge processes on one PostgreSQL behind a proxy; one is killed mid-run.

Every customer message must reach Udesk once and in order, every agent reply must reach the
chat once and in order, whichever replica took it.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bridge.sandbox.telegram_sim import TelegramSimulator
from bridge.store.db import create_engine
from tests.cluster import open_cluster
from tests.e2e.conftest import BOT_TOKEN, free_port, start_udesk
from tests.processes import BridgeProcess, bridge_env

CUSTOMERS = 8
MESSAGES = 8
REPLIES = 5


DIAGNOSE: list[Callable[[], Any]] = []


async def _wait(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            for diagnose in DIAGNOSE:
                await diagnose()
            raise AssertionError("timed out")
        await asyncio.sleep(0.1)


@pytest.fixture
async def cluster(pg_url: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    async with open_cluster(pg_url, tmp_path / "media", logs=tmp_path) as c:
        udesk, telegram, bridges = c.udesk, c.telegram, c.bridges

        async def diagnose() -> None:
            """On a timeout: what each live replica is waiting on (SIGUSR1 logs its tasks)
            and what is still pending in the queues."""
            for b in bridges:
                if b.proc and b.proc.returncode is None:
                    os.kill(b.proc.pid, signal.SIGUSR1)
            await asyncio.sleep(1)
            engine = create_engine(pg_url)
            async with engine.connect() as conn:
                for table in ("telegram_updates", "outbound_messages", "inbound_messages"):
                    rows = await conn.execute(
                        text(
                            f"select id, lock, status, attempts, worker, last_error, "
                            f"scheduled_at, lease_expires_at, now() from {table} "
                            "where status != 'done' order by id"
                        )
                    )
                    for row in rows:
                        print("ROW", table, row)
            await engine.dispose()
            print("PUSHES", [(a.status, a.error) for a in udesk.push_log if not a.ok])
            for i in range(CUSTOMERS):
                print("CHAT", 9000 + i, [m.text for m in telegram.sent(9000 + i)])

        DIAGNOSE[:] = [diagnose]
        yield {"udesk": udesk, "telegram": telegram, "bridges": bridges, "url": pg_url}


@pytest.mark.timeout(120)
async def test_two_replicas_one_killed_everything_once_in_order(cluster: dict[str, Any]) -> None:
    udesk, telegram, bridges = cluster["udesk"], cluster["telegram"], cluster["bridges"]
    users = [{"id": 9000 + i, "first_name": f"C{i}"} for i in range(CUSTOMERS)]

    async def customer_side(user: dict[str, Any]) -> None:
        for n in range(MESSAGES):
            telegram.inject_text(user, f"{user['id']}:{n}")
            await asyncio.sleep(0.05)

    async def agent_side(user: dict[str, Any]) -> None:
        token = f"tg-{user['id']}"
        await _wait(lambda: bool(udesk.messages_for(token)))
        for n in range(REPLIES):
            await udesk.agent_reply(token, f"reply {user['id']}:{n}")
            await asyncio.sleep(0.05)

    async def killer() -> None:
        await asyncio.sleep(0.6)
        await bridges[0].kill()

    await asyncio.gather(
        *(customer_side(u) for u in users), *(agent_side(u) for u in users), killer()
    )
    for user in users:
        token, chat = f"tg-{user['id']}", user["id"]
        await _wait(lambda t=token: len(udesk.messages_for(t)) >= MESSAGES)
        await _wait(
            lambda c=chat: (
                sum(x.text.startswith("reply") for x in telegram.sent(c) if x.text) >= REPLIES
            )
        )
    await asyncio.sleep(1.0)  # anything delivered twice would show by now
    for user in users:
        token, chat = f"tg-{user['id']}", user["id"]
        got_in = [m.data["content"] for m in udesk.messages_for(token)]
        got_out = [m.text for m in telegram.sent(chat) if m.text and m.text.startswith("reply")]
        assert got_in == [f"{chat}:{n}" for n in range(MESSAGES)]
        assert got_out == [f"reply {chat}:{n}" for n in range(REPLIES)]
    # A send in flight when a replica died is sent again by the other one with the same
    # message_id, which Udesk takes once (the lists above have every message once).


async def test_a_second_poller_is_refused(pg_url: str, tmp_path: Path) -> None:
    udesk_port = free_port()
    _udesk, udesk_runner = await start_udesk(udesk_port, "http://127.0.0.1:9/none")
    telegram = TelegramSimulator(bot_token=BOT_TOKEN)
    root = await telegram.start()
    first_port, second_port = free_port(), free_port()
    first = BridgeProcess(bridge_env(pg_url, tmp_path, first_port, udesk_port, root), first_port)
    log = tmp_path / "second.log"
    second = BridgeProcess(
        bridge_env(pg_url, tmp_path, second_port, udesk_port, root), second_port, log=log
    )
    try:
        await first.start()
        with pytest.raises(AssertionError, match="exited with 3"):
            await second.start()
        assert "already polling Telegram for this bot" in log.read_text()
    finally:
        await first.stop()
        await telegram.stop()
        await udesk_runner.cleanup()


async def test_sqlite_refuses_a_second_process(tmp_path: Path) -> None:
    udesk_port = free_port()
    _udesk, udesk_runner = await start_udesk(udesk_port, "http://127.0.0.1:9/none")
    telegram = TelegramSimulator(bot_token=BOT_TOKEN)
    root = await telegram.start()
    url = f"sqlite+aiosqlite:///{tmp_path / 'bridge.db'}"
    first_port, second_port = free_port(), free_port()
    first = BridgeProcess(bridge_env(url, tmp_path, first_port, udesk_port, root), first_port)
    log = tmp_path / "second.log"
    second = BridgeProcess(
        bridge_env(url, tmp_path, second_port, udesk_port, root), second_port, log=log
    )
    try:
        await first.start()
        with pytest.raises(AssertionError, match="exited with 3"):
            await second.start()
        assert "SQLite is for one process only" in log.read_text()
    finally:
        await first.stop()
        await telegram.stop()
        await udesk_runner.cleanup()
