"""Shared pieces of the benchmarks: a fresh PostgreSQL database, the two simulators and the
bridge (the real ``BridgeApp``) wired together, and percentile maths.

Benchmarks print their figures beside a baseline measured in the same run; they are run by
``make bench`` (``python -m tests.bench.run_all``), never as timed unit tests.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web
from sqlalchemy.engine import make_url

from bridge.sandbox.telegram_sim import TelegramSimulator
from bridge.sandbox.udesk_sim import UdeskSimulator
from bridge.store import migrate
from bridge.store.db import asyncpg_dsn
from tests.e2e.conftest import BOT_TOKEN, PUSH_SECRET, free_port, start_udesk
from tests.processes import BridgeProcess, bridge_env

os.environ.setdefault("PTB_TIMEDELTA", "1")
ADMIN_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def median_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Every number in the runs' figures (nested too) as its median over the runs.

    This machine's figures move by a third from one identical run to the next; a median of
    a few runs says more than any one of them.
    """
    first = runs[0]
    merged: dict[str, Any] = {}
    for key, value in first.items():
        values = [run[key] for run in runs]
        if isinstance(value, dict):
            merged[key] = median_figures(values)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            merged[key] = statistics.median(values)
        else:
            merged[key] = value
    return merged


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
    }


def machine() -> str:
    cpus = os.cpu_count() or 0
    return f"{platform.machine()}, {cpus} CPUs, Python {platform.python_version()}"


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    name = f"bridge_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(asyncpg_dsn(ADMIN_URL))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        # Every run starts from a checkpoint: one that the previous benchmark's writes made
        # due would otherwise land, with its fsyncs, in the middle of whichever run is next.
        await admin.execute("CHECKPOINT")
    finally:
        await admin.close()
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(migrate.upgrade, url)
    try:
        yield url
    finally:
        admin = await asyncpg.connect(asyncpg_dsn(ADMIN_URL))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


WORKER_NICE = 10  # split rigs: see rig()


@dataclass
class Rig:
    udesk: UdeskSimulator
    telegram: TelegramSimulator
    bridge: BridgeProcess
    bridge_url: str
    database_url: str


@asynccontextmanager
async def rig(split: bool = False, **settings: str) -> AsyncIterator[Rig]:
    """Both simulators (in this process) and the bridge (``udesk-bridge run``, a process of
    its own, as in production) on a fresh PostgreSQL database, rate limits off.

    ``split``: two bridge processes, ``BRIDGE_ROLE=intake`` (the one ``bridge_url`` and the
    push URL point at) and ``BRIDGE_ROLE=worker``, the worker at a lower CPU priority
    (``nice`` 10) as the README's "Intake and worker processes" advises when both share
    a machine: acknowledgements first, deliveries with the CPU left."""
    async with fresh_database() as url:
        bridge_port, udesk_port = free_port(), free_port()
        bridge_url = f"http://127.0.0.1:{bridge_port}"
        udesk, runner = await start_udesk(udesk_port, f"{bridge_url}/udesk/push/{PUSH_SECRET}")
        udesk.set_agent(1, "Tom", online=True, capacity=100000)
        telegram = TelegramSimulator(bot_token=BOT_TOKEN)
        root = await telegram.start()
        with tempfile.TemporaryDirectory() as media:
            values = {
                "LOG_LEVEL": "WARNING",
                "TELEGRAM_RATE_LIMIT": "unlimited",
                "TELEGRAM_CHAT_RATE_LIMIT": "unlimited",
                "QUEUE_LEASE": "60s",
                **settings,
            }
            if split:
                values["BRIDGE_ROLE"] = "intake"
            env = bridge_env(url, Path(media), bridge_port, udesk_port, root, **values)
            bridge = BridgeProcess(env, bridge_port)
            await bridge.start()
            worker = None
            if split:
                worker_port = free_port()
                values["BRIDGE_ROLE"] = "worker"
                worker_env = bridge_env(url, Path(media), worker_port, udesk_port, root, **values)
                worker = BridgeProcess(worker_env, worker_port, nice=WORKER_NICE)
                await worker.start()
            try:
                yield Rig(udesk, telegram, bridge, bridge_url, url)
            finally:
                if worker is not None:
                    await worker.stop()
                await bridge.stop()
                await telegram.stop()
                await runner.cleanup()


async def serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port
