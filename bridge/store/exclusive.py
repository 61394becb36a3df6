"""Things only one process may do: poll a bot (Telegram allows one getUpdates consumer) and
open a SQLite database (it has no row locks for a second dispatcher to work with)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bridge.store.db import held_connection

POLLER_LOCK_KEY = 0x75646B70
# The process's exit code when another one holds what it needs (at start or later).
EXIT_ALREADY_RUNNING = 3


class AlreadyRunning(RuntimeError):
    """Another process holds the lock; the message says what to do instead."""


class SqliteLock:
    """An exclusive ``flock`` on ``<database>.lock`` for the life of the process."""

    def __init__(self, url: str) -> None:
        database = make_url(url).database
        self.path = Path(f"{database}.lock") if database and database != ":memory:" else None
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise AlreadyRunning(
                f"another bridge process already uses the SQLite database {self.path.stem}; "
                "SQLite is for one process only: use PostgreSQL (DATABASE_URL="
                "postgresql+asyncpg://…) to run several"
            ) from None
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class PollerLock:
    """A PostgreSQL advisory lock held while this process polls Telegram."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._conn: AsyncConnection | None = None

    async def acquire(self) -> None:
        if self.engine.dialect.name != "postgresql":
            return  # SQLite: SqliteLock already guarantees a single process
        conn = await held_connection(self.engine)
        got = await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": POLLER_LOCK_KEY})
        if not got:
            await conn.close()
            raise AlreadyRunning(
                "another bridge process is already polling Telegram for this bot; "
                "run one poller, or use TELEGRAM_MODE=webhook to run several replicas"
            )
        self._conn = conn

    async def ensure(self) -> None:
        """Still ours?  A PostgreSQL restart drops the connection and with it the lock: take
        it again, or stop (AlreadyRunning) if another process got it meanwhile."""
        if self.engine.dialect.name != "postgresql":
            return
        if self._conn is not None:
            try:
                await self._conn.scalar(text("SELECT 1"))
                return
            except Exception:  # the connection died with the server; the lock is gone
                self._conn = None
        await self.acquire()

    async def release(self) -> None:
        if self._conn is not None:
            try:
                await self._conn.close()
            except Exception:  # closing a connection the server already dropped
                pass
            self._conn = None
