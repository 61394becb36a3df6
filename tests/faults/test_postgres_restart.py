"""PostgreSQL restarted under a running ``udesk-bridge run`` while customers write and
agents reply.  The cluster is a private throwaway one (the shared one is never touched).

The outage, as a restart looks from a client: first the server refuses new connections
("the database system is shutting down", 57P03) and drops the bridge's sessions, then it
is gone (connection refused), then it is back.  Meanwhile every Udesk push must be answered
5xx (never 200 for something not stored), GET /readyz 503 naming the database, and
customers' messages wait at Telegram (the poller confirms only what it stored).
Afterwards everything is delivered exactly once and in order, the replies whose push failed
included: Udesk does not push again, the catch-up at the bridge's start fetches them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.sandbox.udesk_sim.state import PushAttempt
from bridge.store import migrate
from tests.faults.private_pg import PrivatePostgres, find_bin_dir
from tests.faults.rigs import Sims
from tests.faults.traffic import Customer, Traffic, eventually
from tests.processes import BridgeProcess, bridge_env

DOOR = 2.5  # seconds new connections are refused (57P03) before the server goes
DOWN = 3.0  # seconds it is gone altogether


class Stuck(AssertionError):
    """The bridge did not deliver by itself after the database came back."""


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivatePostgres]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip("initdb not found: no PostgreSQL server binaries to run a private cluster")
    pg = PrivatePostgres(bin_dir)
    try:
        pg.create()
        yield pg
    finally:
        pg.destroy()


@dataclass
class Setup:
    pg: PrivatePostgres
    database: str
    bridge: BridgeProcess
    traffic: Traffic
    sims: Sims


@pytest.fixture
async def setup(cluster: PrivatePostgres, sims: Sims, tmp_path: Path) -> Any:
    database = f"bridge_{uuid.uuid4().hex[:8]}"
    url = await cluster.create_database(database)
    await asyncio.to_thread(migrate.upgrade, url)
    env = bridge_env(
        url,
        tmp_path / "media",
        sims.bridge_port,
        sims.udesk_port,
        sims.telegram_root,
        QUEUE_LEASE="2s",
        UDESK_TIMEOUT="1s",
        TELEGRAM_RATE_LIMIT="unlimited",
        TELEGRAM_CHAT_RATE_LIMIT="unlimited",
    )
    bridge = BridgeProcess(env, sims.bridge_port, log=tmp_path / "bridge.log")
    traffic = Traffic(sims.udesk, sims.telegram, 3, 9300)
    try:
        yield Setup(cluster, database, bridge, traffic, sims)
    finally:
        await bridge.stop()
        if not (cluster.data / "postmaster.pid").exists():
            await cluster.start()  # a failed test must not leave the next one without it


async def _readyz(url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/readyz") as response:
        return response.status, await response.json()


async def _assert_not_ready(url: str) -> None:
    status, body = await _readyz(url)
    assert status == 503 and body["checks"]["database"].startswith("down"), (status, body)


def _ready(url: str) -> Any:
    async def probe() -> bool:
        return (await _readyz(url))[0] == 200

    return probe


async def _talk_until(traffic: Traffic, stop: asyncio.Event) -> None:
    async def one(c: Customer) -> None:
        while not stop.is_set():
            traffic.write(c)
            await traffic.reply(c)
            await asyncio.sleep(0.25)

    await asyncio.gather(*(one(c) for c in traffic.customers))


async def _restart_under_load(s: Setup) -> list[PushAttempt]:
    """Both sides talk while PostgreSQL restarts; returns the pushes made while it was
    unavailable (after checking each was answered 5xx)."""
    udesk = s.sims.udesk
    stop = asyncio.Event()
    talking = asyncio.create_task(_talk_until(s.traffic, stop))
    await asyncio.sleep(0.5)
    admin = await s.pg.shut_door(s.database)
    unavailable_since = time.time()
    await asyncio.sleep(DOOR)
    await _assert_not_ready(s.sims.bridge_url)
    await s.pg.stop("fast")
    with contextlib.suppress(Exception):
        await admin.close(timeout=1)
    await asyncio.sleep(DOWN)
    await _assert_not_ready(s.sims.bridge_url)
    # The agents stop before it is back: a reply pushed live after the outage would
    # overtake the failed ones, which only a catch-up brings.
    stop.set()
    await talking
    back_from = time.time()
    await s.pg.start()
    during = [p for p in udesk.push_log if unavailable_since <= p.time < back_from]
    assert during, "no push was made while the database was unavailable"
    wrong = [(p.status, p.error) for p in during if p.status is None or p.status < 500]
    assert not wrong, f"pushes during the outage not answered 5xx: {wrong}"
    return during


@pytest.mark.timeout(90)
async def test_postgres_restarted_under_load(setup: Setup) -> None:
    s, traffic = setup, setup.traffic
    await s.bridge.start()
    await traffic.connect()
    await traffic.burst(writes=2, replies=2)
    await traffic.wait_arrived()
    during = await _restart_under_load(s)
    await eventually(_ready(s.sims.bridge_url), timeout=15, what="readyz 200 again")

    # By itself (no restart): what customers wrote during the outage reaches Udesk, and
    # the bot still answers (/help goes through the updates and inbound queues; a new
    # agent reply would overtake the failed ones, which only the catch-up brings).
    for c in traffic.customers:
        s.sims.telegram.inject_command(c.user, "/help")
    try:
        await eventually(
            lambda: all(set(c.wrote) <= set(traffic.in_udesk(c)) for c in traffic.customers),
            timeout=12,
            what="customer messages written during the outage in Udesk",
        )
        await eventually(
            lambda: all(
                any(t.startswith("Write your question") for t in traffic.chat_texts(c))
                for c in traffic.customers
            ),
            timeout=12,
            what="the bot answering /help",
        )
    except AssertionError as exc:
        log = s.bridge.log.read_text() if s.bridge.log else ""
        died = [line for line in log.splitlines() if "background task" in line]
        dead = sorted({line.split('"msg": ')[-1][:60] for line in died})
        raise Stuck(f"{exc}; tasks that died in the bridge: {dead}") from None

    # The replies whose push failed: the catch-up at the bridge's start fetches them.
    await s.bridge.stop()
    await s.bridge.start()
    await traffic.wait_arrived(timeout=30)
    await traffic.burst(writes=2, replies=2)
    await traffic.check(timeout=30)
    statuses = sorted({p.status for p in during if p.status is not None})
    print(
        f"\npostgres restart: {len(during)} pushes while unavailable, answered {statuses}; "
        f"{sum(len(c.wrote) for c in traffic.customers)} customer messages and "
        f"{sum(len(c.replies) for c in traffic.customers)} replies once, in order"
    )
