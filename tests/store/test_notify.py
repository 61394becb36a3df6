"""Wake-ups across processes: a commit that wrote to a queue wakes this process's dispatchers
at once and the other processes' over PostgreSQL's LISTEN/NOTIFY, and its own notification
coming back over LISTEN does not wake this process a second time (a claim finding nothing)."""

from __future__ import annotations

import asyncio

from bridge.store.db import asyncpg_dsn, create_engine, single_statement_sessions
from bridge.store.notify import Waker, mark, waking_sessions


class CountingWaker(Waker):
    """A Waker that counts its wake-ups (each one costs a dispatcher a claim)."""

    def __init__(self, channels: list[str]) -> None:
        super().__init__(channels)
        self.wakes = 0

    def wake(self, channel: str) -> None:
        self.wakes += 1
        super().wake(channel)


async def test_a_commit_wakes_other_processes_and_not_itself_twice(pg_url: str) -> None:
    engine = create_engine(pg_url, pool_size=2)
    here, there = CountingWaker(["q"]), CountingWaker(["q"])
    try:
        for waker in (here, there):
            await waker.listen(asyncpg_dsn(pg_url))
        async with waking_sessions(engine, here).begin() as session:
            mark(session, "q")
        await asyncio.wait_for(there.events["q"].wait(), 5)  # the other process, over NOTIFY
        await asyncio.sleep(0.3)  # our own notification has come back by now
        assert (here.wakes, there.wakes) == (1, 1)  # here: the commit's own, in process
    finally:
        await here.close()
        await there.close()
        await engine.dispose()


async def test_writes_in_autocommit_still_wake_other_processes(pg_url: str) -> None:
    """Pushes of plain messages are stored in autocommit (the group commit's fast path);
    their records must wake the other processes' dispatchers all the same (split intake
    and worker processes, replicas), not leave them to the poll timer."""
    engine = create_engine(pg_url, pool_size=2)
    here, there = CountingWaker(["q"]), CountingWaker(["q"])
    try:
        await there.listen(asyncpg_dsn(pg_url))
        autocommit = single_statement_sessions(waking_sessions(engine, here))
        async with autocommit.begin() as session:
            mark(session, "q")
        assert here.wakes == 1
        await asyncio.wait_for(there.events["q"].wait(), 5)
    finally:
        await there.close()
        await engine.dispose()
