"""Several bridge processes on one PostgreSQL behind a proxy; one is killed mid-run.

Every customer message must reach Udesk once and in order, every agent reply must reach the
chat once and in order, whichever replica took it.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import text

from bridge.sandbox.telegram_sim import TelegramSimulator
from bridge.store.db import create_engine
from tests.e2e.conftest import BOT_TOKEN, PUSH_SECRET, free_port, start_udesk
from tests.processes import BridgeProcess, bridge_env

CUSTOMERS = 8
MESSAGES = 8
REPLIES = 5


class RoundRobin:
    """A tiny reverse proxy: like nginx's upstream, it tries the next replica when one is
    down."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.turn = itertools.cycle(range(len(ports)))
        self.http: aiohttp.ClientSession | None = None

    async def handle(self, request: web.Request) -> web.Response:
        assert self.http is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        # Each request walks the ring from its own starting point: with a shared cycle,
        # concurrent requests would take each other's turns and one could meet the dead
        # replica on every try.
        start = next(self.turn)
        for attempt in range(2 * len(self.ports)):
            port = self.ports[(start + attempt) % len(self.ports)]
            url = f"http://127.0.0.1:{port}{request.rel_url}"
            try:
                async with self.http.request(
                    request.method, url, data=body, headers=headers
                ) as response:
                    return web.Response(status=response.status, body=await response.read())
            except aiohttp.ClientConnectionError:
                continue
        return web.Response(status=502)


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
    proxy_port, udesk_port = free_port(), free_port()
    ports = [free_port(), free_port()]
    proxy = RoundRobin(ports)
    # A fresh connection per request, so a killed replica's pooled connection is never reused.
    proxy.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
    app = web.Application(client_max_size=2 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", proxy_port).start()
    public = f"http://127.0.0.1:{proxy_port}"
    udesk, udesk_runner = await start_udesk(udesk_port, f"{public}/udesk/push/{PUSH_SECRET}")
    udesk.set_agent(1, "Tom", capacity=1000)
    telegram = TelegramSimulator(bot_token=BOT_TOKEN)
    root = await telegram.start()
    media = tmp_path / "media"  # shared, as the deployment guide asks
    bridges = [
        BridgeProcess(
            bridge_env(
                pg_url,
                media,
                port,
                udesk_port,
                root,
                TELEGRAM_MODE="webhook",
                TELEGRAM_WEBHOOK_SECRET="webhook-secret-for-tests",
                PUBLIC_URL=public,
            ),
            port,
            log=tmp_path / f"replica-{port}.log",
        )
        for port in ports
    ]

    async def diagnose() -> None:
        """On a timeout: what each live replica is waiting on (SIGUSR1 logs its tasks) and
        what is still pending in the queues."""
        for b in bridges:
            if b.proc and b.proc.returncode is None:
                os.kill(b.proc.pid, signal.SIGUSR1)
        await asyncio.sleep(1)
        engine = create_engine(pg_url)
        async with engine.connect() as c:
            for table in ("telegram_updates", "outbound_messages", "inbound_messages"):
                rows = await c.execute(
                    text(
                        f"select id, lock, status, attempts, worker, last_error, scheduled_at,"
                        f" lease_expires_at, now() from {table} where status != 'done' order by id"
                    )
                )
                for row in rows:
                    print("ROW", table, row)
        await engine.dispose()
        print("PUSHES", [(a.status, a.error) for a in udesk.push_log if not a.ok])
        for i in range(CUSTOMERS):
            print("CHAT", 9000 + i, [m.text for m in telegram.sent(9000 + i)])

    DIAGNOSE[:] = [diagnose]
    try:
        for bridge in bridges:  # inside: one failing to start stops the others
            await bridge.start()
        yield {"udesk": udesk, "telegram": telegram, "bridges": bridges, "url": pg_url}
    finally:
        for bridge in bridges:
            await bridge.stop()
        await telegram.stop()
        await udesk_runner.cleanup()
        await proxy.http.close()
        await runner.cleanup()


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
