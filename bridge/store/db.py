"""Engine and session factory for PostgreSQL (asyncpg) and SQLite (aiosqlite)."""

from __future__ import annotations

from typing import Any, TypeVar

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# What "the database is unavailable" looks like from here.  asyncpg raises some errors that
# SQLAlchemy does not wrap, e.g. CannotConnectNowError (57P03) while PostgreSQL shuts down or
# starts up; missing them once let a restart kill the dispatchers.  DBAPIError also covers
# a refused value: where a write carries outside data, ask ``is_bad_data`` first.
DATABASE_DOWN: tuple[type[BaseException], ...] = (
    OperationalError,
    PoolTimeout,  # every connection busy for pool_timeout: as good as down, for now
    DBAPIError,
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


def is_bad_data(exc: BaseException) -> bool:
    """The database refused a value (SQLSTATE class 22: a NUL, a number out of range, a
    string too long; or the driver could not even encode it), as opposed to being
    unavailable.  Retrying the same write can never succeed, so it is never "database
    down".  asyncpg's errors reach us wrapped in a plain DBAPIError, so the cause chain is
    looked at."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        if isinstance(seen, DataError | OverflowError | UnicodeError):
            return True
        state = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if isinstance(state, str) and state.startswith("22"):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


def create_engine(url: str, *, pool_size: int = 20) -> AsyncEngine:
    """An engine tuned for the bridge: WAL and foreign keys on SQLite, a bounded pool on PG."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # We issue BEGIN ourselves (below); pysqlite's implicit deferred BEGIN lets two
            # transactions both read, then fail to upgrade to writing with "database is
            # locked" instead of waiting for each other.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            if parsed.database not in (None, "", ":memory:"):
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin_immediate(conn: Any) -> None:
            # Writers queue up on SQLite's lock (busy_timeout) from the start.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # No pool_pre_ping: it costs a round trip on every checkout (several per message), and
    # SQLAlchemy already invalidates the whole pool on the first disconnect error, which the
    # dispatchers retry; that is how the bridge rides out a PostgreSQL restart.
    # A fixed pool, no overflow: a connection opened beyond the pool is closed again when
    # returned, and under load that churn (TLS negotiation, authentication, a new backend)
    # cost more than the statements themselves.  A task that finds every connection busy
    # waits its turn; nothing holds one connection while asking for another (the suite runs
    # green on a pool of three, two of them held by the leader and poller locks).
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=30,
        pool_recycle=1800,
        # Statement parameters are message content and phone numbers: never in errors/logs.
        hide_parameters=True,
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def read_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for single reads that need no transaction (loading a customer before a
    send): on PostgreSQL in autocommit, which spares the BEGIN and ROLLBACK round trips
    that would wrap the one SELECT.  On SQLite a transaction there is local and cheap, and
    ours take the write lock (BEGIN IMMEDIATE), so ordinary sessions are kept."""
    return single_statement_sessions(session_factory(engine))


def single_statement_sessions(
    sessions: async_sessionmaker[AsyncSession],
) -> async_sessionmaker[AsyncSession]:
    """Sessions for writes that are one statement each, or several that need not commit
    together (a claim, a batch of completions): on PostgreSQL in autocommit, where a
    statement is its own transaction and the BEGIN and COMMIT round trips around it are
    spared (they were two of every three statements a delivery cost the database).  On
    SQLite ``sessions`` itself: writers there queue on the lock that BEGIN IMMEDIATE takes.
    Nothing written through these sessions wakes a dispatcher (``waking_sessions``)."""
    bind = sessions.kw.get("bind")
    if not isinstance(bind, AsyncEngine) or not is_postgres(bind):
        return sessions
    # The same kind of session otherwise (a waking one stays waking: its marks still
    # become pg_notify calls, each in autocommit after the writes it announces).
    autocommit = bind.execution_options(isolation_level="AUTOCOMMIT")
    return async_sessionmaker(class_=sessions.class_, **{**sessions.kw, "bind": autocommit})


def is_autocommit(session: AsyncSession) -> bool:
    """Whether each statement of ``session`` commits on its own (``single_statement_sessions``
    on PostgreSQL): a failed statement there leaves the others standing."""
    bind = session.bind
    if not isinstance(bind, AsyncEngine):
        return False
    return bind.get_execution_options().get("isolation_level") == "AUTOCOMMIT"


async def held_connection(engine: AsyncEngine) -> AsyncConnection:
    """A connection kept for the life of a session-level advisory lock, in autocommit.

    SQLAlchemy begins a transaction on a connection's first statement and keeps it until a
    commit; a held connection's liveness checks (``SELECT 1``) would leave it idle in a
    transaction whose snapshot holds back PostgreSQL's xmin horizon for as long as the
    process runs.  Nothing dead could then be cleaned up: not by VACUUM, and not by index
    scans, which skip dead entries for good only once no snapshot can see them.  The
    queues' claims, walking ever more dead entries of finished records, were most of the
    database's time under load."""
    conn = await engine.connect()
    return await conn.execution_options(isolation_level="AUTOCOMMIT")


def is_postgres(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"


def asyncpg_dsn(url: str) -> str:
    """The plain ``postgresql://`` DSN asyncpg's own connect() wants (for LISTEN)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


T = TypeVar("T")


def padded(values: list[T]) -> list[T]:
    """``values`` lengthened to a power of two by repeating the last one, for an expanding
    ``IN (…)``: every length is a statement of its own, prepared on every pooled connection,
    and a repeated value changes nothing in an IN list (the ``padded`` lists keep the
    statements to a handful)."""
    size = 1
    while size < len(values):
        size *= 2
    return values + values[-1:] * (size - len(values)) if values else values
