"""The advisory locks held for the life of the process (the Telegram poller's, the periodic
jobs' leader) must not keep a transaction open on their connection: an idle transaction's
snapshot holds back PostgreSQL's cleanup of every dead row in the database for as long as
the bridge runs (VACUUM and index scans alike), and the queues slow down as they bloat."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.store.db import create_engine
from bridge.store.exclusive import AlreadyRunning, PollerLock
from bridge.store.leader import LeaderLock


@pytest.fixture
async def pg_engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(pg_url)
    yield engine
    await engine.dispose()


async def idle_transactions(engine: AsyncEngine) -> list[tuple[int, str]]:
    """Other sessions of this database idle inside a transaction or holding a snapshot."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT pid, state FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND (state LIKE 'idle in transaction%' OR backend_xmin IS NOT NULL)"
            )
        )
        return [(row.pid, row.state) for row in rows]


async def test_poller_lock_holds_no_transaction(pg_engine: AsyncEngine) -> None:
    lock = PollerLock(pg_engine)
    await lock.acquire()
    try:
        await lock.ensure()  # the liveness check the poller runs before every getUpdates
        await lock.ensure()
        assert await idle_transactions(pg_engine) == []
        with pytest.raises(AlreadyRunning):  # and it is still held
            await PollerLock(pg_engine).acquire()
    finally:
        await lock.release()


async def test_leader_lock_holds_no_transaction(pg_engine: AsyncEngine) -> None:
    leader, other = LeaderLock(pg_engine, 4242), LeaderLock(pg_engine, 4242)
    try:
        assert await leader.is_leader()
        assert await leader.is_leader()  # the check every periodic job runs
        assert await idle_transactions(pg_engine) == []
        assert not await other.is_leader()  # and it is still held
    finally:
        await leader.release()
        await other.release()
