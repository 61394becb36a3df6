"""A crash costs customers seconds, not a lease: with the default QUEUE_LEASE (60 s), a
bridge killed while Udesk hangs on a customer's message is replaced, and the stuck message
and the next one are in Udesk within 5 s: after a restart (one process, PostgreSQL and
SQLite) and after the kill for a surviving replica (two processes, PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bridge.sandbox.telegram_sim import TelegramSimulator
from bridge.sandbox.udesk_sim import UdeskSimulator
from bridge.store.db import create_engine
from tests.cluster import Cluster, open_cluster
from tests.e2e.conftest import BOT_TOKEN, PUSH_SECRET, free_port, start_udesk
from tests.processes import BridgeProcess, bridge_env
from tests.waiting import eventually

USER = {"id": 7301, "first_name": "Ana", "language_code": "en"}
TOKEN = "tg-7301"
TARGET = 5.0  # seconds, from the issue
LEASE = "60s"  # the default: the takeover must not wait for it


def _contents(udesk: UdeskSimulator) -> list[str]:
    return [m.data["content"] for m in udesk.messages_for(TOKEN)]


async def _hang_on_next_message(udesk: UdeskSimulator, telegram: TelegramSimulator) -> None:
    """The customer's next message reaches Udesk, which hangs on it (20 s, longer than the
    test): the send is in flight when the bridge dies."""
    udesk.inject_fault("/im/messages", "latency", delay=20, count=1)
    before = _sends(udesk)
    telegram.inject_text(USER, "stuck")
    await eventually(lambda: _sends(udesk) > before, timeout=10)


def _sends(udesk: UdeskSimulator) -> int:
    """Message sends that reached Udesk, answered or not."""
    return sum(path == "/im/messages" for _, path in udesk.arrived)


@pytest.fixture
async def one_bridge(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Any, ...]]:
    port, udesk_port = free_port(), free_port()
    udesk, runner = await start_udesk(
        udesk_port, f"http://127.0.0.1:{port}/udesk/push/{PUSH_SECRET}"
    )
    udesk.set_agent(1, "Tom", capacity=5)
    telegram = TelegramSimulator(bot_token=BOT_TOKEN)
    root = await telegram.start()
    env = bridge_env(
        database_url,
        tmp_path / "media",
        port,
        udesk_port,
        root,
        QUEUE_LEASE=LEASE,
        UDESK_TIMEOUT="10s",
    )
    bridge = BridgeProcess(env, port, log=tmp_path / "bridge.log")
    try:
        yield bridge, udesk, telegram
    finally:
        await bridge.stop()
        await telegram.stop()
        await runner.cleanup()


async def test_restarted_bridge_takes_over_in_seconds(one_bridge: tuple[Any, ...]) -> None:
    bridge, udesk, telegram = one_bridge
    await bridge.start()
    telegram.inject_text(USER, "hello")
    await eventually(lambda: _contents(udesk) == ["hello"], timeout=20)
    await _hang_on_next_message(udesk, telegram)
    await bridge.kill()
    restarted = time.monotonic()
    await bridge.start()
    telegram.inject_text(USER, "next")
    await eventually(lambda: _contents(udesk) == ["hello", "stuck", "next"], timeout=30)
    took = time.monotonic() - restarted
    print(f"\nrestart to stuck + next message in Udesk: {took:.2f} s (lease {LEASE})")
    assert took < TARGET, f"{took:.1f} s after the restart"


@pytest.fixture
async def two_replicas(pg_url: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    async with open_cluster(
        pg_url, tmp_path / "media", logs=tmp_path, QUEUE_LEASE=LEASE, UDESK_TIMEOUT="10s"
    ) as cluster:
        yield cluster


async def _holder(url: str, bridges: list[BridgeProcess]) -> BridgeProcess:
    """The replica whose worker holds the customer's message (its pid is in the id)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            worker = await conn.scalar(
                text("SELECT worker FROM outbound_messages WHERE status = 'doing'")
            )
    finally:
        await engine.dispose()
    assert worker, "no message in flight"
    for bridge in bridges:
        assert bridge.proc is not None
        if f"-{bridge.proc.pid}-" in worker:
            return bridge
    raise AssertionError(f"no replica is {worker}")


async def test_surviving_replica_takes_over_in_seconds(two_replicas: Cluster) -> None:
    udesk, telegram = two_replicas.udesk, two_replicas.telegram
    telegram.inject_text(USER, "hello")
    await eventually(lambda: _contents(udesk) == ["hello"], timeout=20)
    await _hang_on_next_message(udesk, telegram)
    victim = await _holder(two_replicas.database_url, two_replicas.bridges)
    await victim.kill()
    killed = time.monotonic()
    telegram.inject_text(USER, "next")
    await eventually(lambda: _contents(udesk) == ["hello", "stuck", "next"], timeout=30)
    took = time.monotonic() - killed
    print(f"\nkill to stuck + next message in Udesk via the survivor: {took:.2f} s")
    assert took < TARGET, f"{took:.1f} s after the kill"
