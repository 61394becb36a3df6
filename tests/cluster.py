"""Several ``udesk-bridge run`` replicas on one PostgreSQL database behind a round-robin
proxy (as behind nginx), with both simulators: for replica tests and the kill loop."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from bridge.sandbox.telegram_sim import TelegramSimulator
from bridge.sandbox.udesk_sim import UdeskSimulator
from tests.e2e.conftest import BOT_TOKEN, PUSH_SECRET, free_port, start_udesk
from tests.processes import BridgeProcess, bridge_env


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


@dataclass
class Cluster:
    udesk: UdeskSimulator
    telegram: TelegramSimulator
    bridges: list[BridgeProcess]
    database_url: str


@asynccontextmanager
async def open_cluster(
    database_url: str,
    media: Path,
    *,
    replicas: int = 2,
    agent_capacity: int = 1000,
    logs: Path | None = None,
    **env: str,
) -> AsyncIterator[Cluster]:
    """Start the simulators, the proxy and ``replicas`` bridges in webhook mode (``env``:
    more of their settings; ``logs``: a folder for each replica's log)."""
    proxy_port, udesk_port = free_port(), free_port()
    ports = [free_port() for _ in range(replicas)]
    proxy = RoundRobin(ports)
    # A fresh connection per request, so a killed replica's pooled connection is never reused.
    proxy.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
    app = web.Application(client_max_size=2 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", proxy_port).start()
    public = f"http://127.0.0.1:{proxy_port}"
    udesk, udesk_runner = await start_udesk(udesk_port, f"{public}/udesk/push/{PUSH_SECRET}")
    udesk.set_agent(1, "Tom", online=True, capacity=agent_capacity)
    telegram = TelegramSimulator(bot_token=BOT_TOKEN)
    root = await telegram.start()
    bridges = [
        BridgeProcess(
            bridge_env(
                database_url,
                media,  # shared, as the deployment guide asks
                port,
                udesk_port,
                root,
                TELEGRAM_MODE="webhook",
                TELEGRAM_WEBHOOK_SECRET="webhook-secret-for-tests",
                PUBLIC_URL=public,
                **env,
            ),
            port,
            log=logs / f"replica-{port}.log" if logs is not None else None,
        )
        for port in ports
    ]
    try:
        for bridge in bridges:  # inside: one failing to start stops the others
            await bridge.start()
        yield Cluster(udesk, telegram, bridges, database_url)
    finally:
        for bridge in bridges:
            await bridge.stop()
        await telegram.stop()
        await udesk_runner.cleanup()
        await proxy.http.close()
        await runner.cleanup()
