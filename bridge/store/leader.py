"""One replica at a time for periodic jobs (queue polls, catch-up): a PostgreSQL advisory
lock held on a dedicated connection.  If that connection dies, PostgreSQL releases the lock
and another replica takes over.  SQLite means one process, which is always the leader."""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bridge.store.db import held_connection

log = logging.getLogger("bridge.store.leader")


class LeaderLock:
    def __init__(self, engine: AsyncEngine, key: int) -> None:
        self.engine = engine
        self.key = key
        self._conn: AsyncConnection | None = None

    async def is_leader(self) -> bool:
        if self.engine.dialect.name != "postgresql":
            return True
        try:
            if self._conn is not None:
                await self._conn.execute(text("SELECT 1"))
                return True
            conn = await held_connection(self.engine)
            got = await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key})
            if got:
                self._conn = conn
                log.info("this replica now runs the periodic jobs (lock %s)", self.key)
                return True
            await conn.close()
            return False
        except Exception as exc:  # a dead connection means we are not (or no longer) leader
            log.warning("leader lock check failed: %s", type(exc).__name__)
            await self.release()
            return False

    async def release(self) -> None:
        if self._conn is not None:
            try:
                await self._conn.close()
            except Exception:
                log.debug("closing the leader connection failed", exc_info=True)
            self._conn = None
