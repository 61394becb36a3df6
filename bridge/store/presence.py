"""This process's presence in PostgreSQL: how another process knows our claims are alive.

Every claimed record names its worker (``worker``).  A process holds one connection of its
own whose ``application_name`` is its worker id; PostgreSQL lists it in
``pg_stat_activity`` for exactly as long as that connection lives.  A process that dies,
whatever the cause (``kill -9``, OOM, a crashed host), loses the connection, and with it
its entry: the claims it held are then taken over at once (``DurableQueue.recover_expired``)
instead of when their lease runs out.  The lease stays the last resort for a process that
is alive but stuck.

Why a connection's name and not a heartbeat row: a heartbeat only says "not dead yet" after
it has been missed for a while, which is the lease again; the server drops a dead client's
session the moment its socket closes.  A crashed *host* sends no FIN; the TCP keepalives
set here make the server drop its session within about 15 s even then.

SQLite has one process only (``SqliteLock``), so there is nothing to be present to: claims
left over from a previous process are all released at start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

log = logging.getLogger("bridge.store.presence")

# PostgreSQL keeps application_name to NAMEDATALEN - 1 bytes (63) and ASCII.
MAX_WORKER_ID = 63
# A PostgreSQL server that restarted just now drops every process's presence at once; they
# all come back within a second or two.  Until the server has been up this long, absence
# proves nothing and only the lease counts.
RESTART_GRACE_SECONDS = 10
KEEPALIVES = {
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
}


def is_valid_worker_id(worker_id: str) -> bool:
    return len(worker_id) <= MAX_WORKER_ID and worker_id.isascii()


class Presence:
    """One asyncpg connection named after this worker, kept open for the process's life
    (outside the SQLAlchemy pool, so the pool's size is the statements' alone)."""

    def __init__(self, dsn: str, worker_id: str) -> None:
        if not is_valid_worker_id(worker_id):
            raise ValueError(f"worker id must be ASCII and at most {MAX_WORKER_ID} bytes")
        self.dsn = dsn
        self.worker_id = worker_id
        self._conn: Any = None
        self.since: float | None = None  # monotonic time of the current connection

    @property
    def up(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def connect(self) -> None:
        """Announce this worker; raises when the database cannot be reached (at start, a
        process that cannot announce itself must not claim anything)."""
        import asyncpg

        settings = {"application_name": self.worker_id, **KEEPALIVES}
        self._conn = await asyncpg.connect(self.dsn, server_settings=settings, timeout=10)
        self.since = time.monotonic()

    async def keep(self, every: float = 1.0) -> None:
        """Reconnect when the connection is lost (a PostgreSQL restart, a network fault)."""
        import asyncpg

        while True:
            await asyncio.sleep(every)
            if self.up:
                continue
            try:
                await self.connect()
                log.info("presence in the database restored (%s)", self.worker_id)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                self._conn = None
                log.warning("presence in the database lost: %s", type(exc).__name__)

    async def close(self) -> None:
        if self._conn is not None:
            try:
                await self._conn.close(timeout=2)
            except Exception:  # a connection the server already dropped
                log.debug("presence connection close failed", exc_info=True)
            self._conn = None
