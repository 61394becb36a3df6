"""The durable queue over one of the queue tables (see ``tables.QueueColumns``).

Claim (one committed UPDATE of the heads of the customers' lines), call out, then finish
with a second short write (each a statement in autocommit on PostgreSQL, ``self.single``):
no transaction is ever held open across an HTTP call.  A
record is claimable only when no earlier record with the same ``lock`` is still waiting or
in flight, so one customer's records go one at a time, in order, across any number of
processes, while a customer whose record is backing off never blocks the others.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    Table,
    TypeDecorator,
    and_,
    bindparam,
    column,
    exists,
    func,
    literal_column,
    or_,
    select,
    table,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import Executable

from bridge.logs import correlation_id as current_correlation_id
from bridge.logs import redact
from bridge.store.db import is_autocommit, single_statement_sessions
from bridge.store.presence import RESTART_GRACE_SECONDS
from bridge.store.tables import IN_FLIGHT, QueueColumns, RecordStatus, utcnow

log = logging.getLogger("bridge.store.queue")


class LeaseLost(RuntimeError):
    """The record was taken over by another worker while we held it."""


@dataclass(frozen=True)
class Claimed:
    """A record handed to a worker; ``attempts`` counts this attempt."""

    id: int
    dedup_key: str
    lock: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    created_at: dt.datetime
    correlation_id: str | None
    extra: dict[str, Any]
    # Whether later records of the same lock were waiting when this one was claimed: the
    # dispatcher then takes the next one itself when this one is done (PostgreSQL), or
    # wakes its claim loop for it.
    more_waiting: bool = False


def core_table(table: type[QueueColumns]) -> Table:
    """The Core table behind a queue's ORM class.

    The queue's statements are Core statements on purpose: they run for every message, and
    an ORM-enabled UPDATE or INSERT (bulk persistence, session synchronisation, ORM result
    set-up) costs several times the CPU of the same statement in Core, for nothing here:
    no queue row is ever loaded as an object.
    """
    return table.__table__  # type: ignore[attr-defined,no-any-return]


_INSERTS: dict[tuple[str, frozenset[str]], Executable] = {}


def _insert_statement(table: Table, columns: frozenset[str]) -> Executable:
    """``INSERT … ON CONFLICT (dedup_key) DO NOTHING RETURNING id`` for these columns,
    built once per table and set of columns.

    Written as text on purpose: SQLAlchemy's dialect ``insert()`` with ON CONFLICT has no
    cache key (its ``inherit_cache = False``), so it was compiled anew for every record,
    a tenth of the bridge's CPU under load.  The SQL is the same on PostgreSQL and SQLite
    (3.35+); the parameters keep their columns' types (JSON, timezone-aware datetimes).
    """
    key = (table.name, columns)
    stmt = _INSERTS.get(key)
    if stmt is None:
        names = sorted(columns)
        quoted = ", ".join(f'"{n}"' for n in names)
        params = ", ".join(f":{n}" for n in names)
        stmt = (
            text(
                f'INSERT INTO "{table.name}" ({quoted}) VALUES ({params}) '
                'ON CONFLICT ("dedup_key") DO NOTHING RETURNING "id"'
            )
            .bindparams(*(bindparam(n, type_=table.c[n].type) for n in names))
            .columns(table.c.id)
        )
        _INSERTS[key] = stmt
    return stmt


def _in_flight(table: Any) -> ColumnElement[bool]:
    """Waiting or in flight.  The statuses as literals, not parameters: the partial indexes
    (in-flight records only) are usable only when the planner sees the very predicate they
    were built with, and a prepared statement's generic plan would not."""
    return table.c.status.in_([literal_column(f"'{s}'") for s in IN_FLIGHT])


def _head_of(t: Table, lock: ColumnElement[Any]) -> ColumnElement[Any]:
    """The first record in ``lock``'s line (waiting or in flight): an index probe."""
    probe = t.alias("q_head_of")
    return (
        select(func.min(probe.c.id))
        .where(_in_flight(probe), probe.c.lock == lock)
        .scalar_subquery()
    )


# What ``_done`` sets the same for every record (complete_many_in).
_DONE_FIXED = frozenset({"status", "finished_at", "lease_expires_at"})


_MANY_INSERTS: dict[tuple[str, tuple[str, ...], int], Executable] = {}


def _insert_many_statement(table: Table, names: tuple[str, ...], rows: int) -> Executable:
    """``_insert_statement`` for ``rows`` records at once, returning the new ones' ids and
    dedup keys; built once per table, columns and number of rows."""
    key = (table.name, names, rows)
    stmt = _MANY_INSERTS.get(key)
    if stmt is None:
        quoted = ", ".join(f'"{n}"' for n in names)
        tuples = ", ".join("(" + ", ".join(f":{n}_{i}" for n in names) + ")" for i in range(rows))
        stmt = (
            text(
                f'INSERT INTO "{table.name}" ({quoted}) VALUES {tuples} '
                'ON CONFLICT ("dedup_key") DO NOTHING RETURNING "id", "dedup_key"'
            )
            .bindparams(
                *(bindparam(f"{n}_{i}", type_=table.c[n].type) for i in range(rows) for n in names)
            )
            .columns(table.c.id, table.c.dedup_key)
        )
        _MANY_INSERTS[key] = stmt
    return stmt


def _is_text(column_type: Any) -> bool:
    """A text column, ``last_error``'s ErrorText (text underneath) included."""
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    return isinstance(column_type, String)


def _aware(value: dt.datetime) -> dt.datetime:
    # SQLite hands datetimes back naive; every time we store is UTC.
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


async def enqueue(
    session: AsyncSession,
    table: type[QueueColumns],
    *,
    dedup_key: str,
    lock: str,
    kind: str,
    payload: dict[str, Any],
    scheduled_at: dt.datetime | None = None,
    correlation_id: str | None = None,
    **extra: Any,
) -> int | None:
    """Insert a record in the caller's transaction; None when ``dedup_key`` was seen before.

    The unique key decides, not a cache: ``ON CONFLICT DO NOTHING`` keeps the caller's
    transaction usable on PostgreSQL where a raised IntegrityError would abort it.
    """
    values = _record_values(
        dedup_key=dedup_key,
        lock=lock,
        kind=kind,
        payload=payload,
        scheduled_at=scheduled_at,
        correlation_id=correlation_id,
        **extra,
    )
    # Values go as parameters of a statement built once (see _insert_statement).
    result = await session.execute(_insert_statement(core_table(table), frozenset(values)), values)
    return result.scalar_one_or_none()


def _record_values(
    *,
    dedup_key: str,
    lock: str,
    kind: str,
    payload: dict[str, Any],
    scheduled_at: dt.datetime | None = None,
    correlation_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "dedup_key": dedup_key,
        "lock": lock,
        "kind": kind,
        "payload": payload,
        "status": RecordStatus.TODO.value,
        "attempts": 0,
        "scheduled_at": scheduled_at or utcnow(),
        "created_at": utcnow(),
        # Records made while handling another inherit its id, so one message can be followed.
        "correlation_id": (correlation_id or current_correlation_id.get() or "")[:40] or None,
        **extra,
    }


async def enqueue_many(
    session: AsyncSession, table: type[QueueColumns], records: list[dict[str, Any]]
) -> dict[str, int]:
    """``enqueue`` for several records (the same keyword arguments each, as dicts) in one
    statement per group of like records; returns the new records' ids by dedup key (a key
    seen before, or twice in ``records``, is new once at most)."""
    created: dict[str, int] = {}
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for record in records:
        values = _record_values(**record)
        groups.setdefault(tuple(sorted(values)), []).append(values)
    core = core_table(table)
    for names, rows in groups.items():
        start = 0
        while start < len(rows):
            chunk = rows[start : start + _chunk_size(len(rows) - start)]
            start += len(chunk)
            params = {f"{n}_{i}": row[n] for i, row in enumerate(chunk) for n in names}
            result = await session.execute(_insert_many_statement(core, names, len(chunk)), params)
            created.update({key: record_id for record_id, key in result})
    return created


def _chunk_size(remaining: int) -> int:
    """Records per INSERT: a power of two up to 32, so a table has six INSERT statements in
    all (37 records go as 32, 4 and 1).  Each row count is a statement of its own, prepared
    on every pooled connection; one per count up to 50 overflowed the drivers' statement
    caches (prepared again and again) and grew the process by megabytes."""
    size = 32
    while size > remaining:
        size //= 2
    return size


class DurableQueue:
    """Claim, finish, retry and recover records of one queue table."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        table: type[QueueColumns],
        *,
        worker_id: str,
        lease_seconds: float = 60.0,
        extra_columns: tuple[str, ...] = (),
        looked_up: Mapping[str, Callable[[Table], ColumnElement[Any]]] | None = None,
    ) -> None:
        """``extra_columns``: more of the record's columns for the handler (``extra``).
        ``looked_up``: values read elsewhere at claim time, by name, each an expression
        over the queue's table (a scalar subquery); they arrive in ``extra`` too and save
        the handler a query of its own per record."""
        self.sessions = sessions
        # Claims, completions and other single-statement writes: autocommit on PostgreSQL.
        self.single = single_statement_sessions(sessions) if sessions is not None else None
        self.table = table
        self.worker_id = worker_id
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.extra_columns = extra_columns
        self.looked_up = dict(looked_up or {})
        self._extra_names = (*extra_columns, *self.looked_up)
        self._claim: Executable | None = None
        self._claim_locks: Executable | None = None
        self._finishes: dict[frozenset[str], Executable] = {}
        self._complete_many: dict[tuple[str, ...], Executable] = {}

    @property
    def on_postgres(self) -> bool:
        """Whether the queue lives on PostgreSQL (some statements are PostgreSQL's only)."""
        bind = self.sessions.kw.get("bind") if self.sessions is not None else None
        return bind is None or bind.dialect.name == "postgresql"

    @property
    def name(self) -> str:
        return str(self.table.__tablename__)  # type: ignore[attr-defined]

    def _claim_statement(self) -> Executable:
        """``UPDATE … WHERE id = ANY(<heads that wait and are due>) RETURNING``, one round
        trip; built once."""
        if self._claim is None:
            t = core_table(self.table)
            head_row, probe = t.alias("q_head"), t.alias("q_probe")
            todo = head_row.c.status == literal_column(f"'{RecordStatus.TODO.value}'")
            # A record may go when it is the first waiting record of its lock: the head of
            # each lock's line.  The locks with anything in flight are walked through the
            # in-flight (lock, id) index one distinct lock at a time (a "loose index scan",
            # a recursive CTE on both PostgreSQL and SQLite), so a claim costs a few index
            # probes per busy customer however deep their backlog.  (Grouping every
            # waiting record by lock read the whole backlog on every claim: 2.7 ms of
            # database time per claim behind 6,000 queued pushes, which capped delivery.)
            locks = (
                select(func.min(t.c.lock).label("lock"))
                .where(_in_flight(t))
                .cte("busy_locks", recursive=True)
            )
            next_lock = (
                select(func.min(probe.c.lock))
                .where(_in_flight(probe), probe.c.lock > locks.c.lock)
                .scalar_subquery()
            )
            locks = locks.union_all(select(next_lock).where(locks.c.lock.is_not(None)))
            head = _head_of(t, locks.c.lock)
            heads = select(head.label("head")).where(locks.c.lock.is_not(None)).subquery()
            # A head may go when it waits (rather than is in flight) and is due: read with a
            # scalar subquery, a primary-key probe per head (as a join, the planner
            # preferred hashing the whole backlog).
            due_at = (
                select(head_row.c.scheduled_at)
                .where(head_row.c.id == heads.c.head, todo)
                .scalar_subquery()
            )
            # The candidates are computed, not rows read FOR UPDATE SKIP LOCKED: two
            # claimers that pick the same head serialise on its row and the second finds it
            # no longer waiting (the UPDATE's own status check); the unique "one in flight
            # per lock" index stays the last word on order.
            candidates = (
                select(heads.c.head)
                .where(due_at <= bindparam("now"))
                .order_by(heads.c.head)
                .limit(bindparam("limit"))
                .scalar_subquery()
            )
            chosen: ColumnElement[bool] = t.c.id.in_(candidates)
            if self.on_postgres:
                # ``id = ANY(ARRAY(…))``: the chosen ids computed first, then a primary-key
                # probe each; as ``IN (…)`` the planner hashed every waiting record again.
                chosen = t.c.id == func.any(func.array(candidates))
            self._claim = (
                update(t)
                .where(chosen, t.c.status == RecordStatus.TODO.value)
                .values(self._taken(t))
                .returning(*self._returned_columns(t))
            )
        return self._claim

    def _taken(self, t: Table) -> dict[str, Any]:
        """What a claim sets on the records it takes (both claim statements)."""
        return {
            "status": RecordStatus.DOING.value,
            "attempts": t.c.attempts + 1,
            "lease_expires_at": bindparam("lease_until"),
            "worker": self.worker_id,
        }

    def _returned_columns(self, t: Table) -> list[ColumnElement[Any]]:
        later = t.alias("q_later")
        # The claimed row's columns spelled with their table's name: SQLite's RETURNING
        # renders them unqualified, and inside the subquery those would name q_later's.
        lock: ColumnElement[Any] = literal_column(f'"{t.name}"."lock"')
        row_id: ColumnElement[Any] = literal_column(f'"{t.name}"."id"')
        more_waiting: ColumnElement[Any] = (
            exists()
            .where(later.c.lock == lock, later.c.id > row_id, _in_flight(later))
            .label("more_waiting")
        )
        return [
            t.c.id,
            t.c.dedup_key,
            t.c.lock,
            t.c.kind,
            t.c.payload,
            t.c.attempts,
            t.c.created_at,
            t.c.correlation_id,
            more_waiting,
            *(t.c[c] for c in self.extra_columns),
            *(build(t).label(name) for name, build in self.looked_up.items()),
        ]

    def _claim_locks_statement(self) -> Executable:
        """The claim of the heads of these locks' lines (``:locks``, a text array), if
        waiting and due; PostgreSQL only, built once."""
        if self._claim_locks is None:
            t = core_table(self.table)
            wanted = (
                func.unnest(bindparam("locks", type_=postgresql.ARRAY(String)))
                .table_valued("lock")
                .render_derived(name="wanted")
            )
            heads = select(_head_of(t, wanted.c.lock)).select_from(wanted).scalar_subquery()
            self._claim_locks = (
                update(t)
                .where(
                    t.c.id == func.any(func.array(heads)),
                    t.c.status == RecordStatus.TODO.value,
                    t.c.scheduled_at <= bindparam("now"),
                )
                .values(self._taken(t))
                .returning(*self._returned_columns(t))
            )
        return self._claim_locks

    async def claim(self, limit: int) -> list[Claimed]:
        """Take up to ``limit`` records whose turn has come; committed before returning."""
        if limit <= 0:
            return []
        now = utcnow()
        params = {"now": now, "limit": limit, "lease_until": now + self.lease}
        try:
            async with self.single.begin() as session:
                rows = (await session.execute(self._claim_statement(), params)).all()
        except IntegrityError:
            # Another process claimed a record of the same lock at the same moment; the
            # partial unique index refused the second one.  Try again later.
            log.debug("claim race on %s, retrying", self.name)
            return []
        claimed = [self._claimed(row) for row in rows]
        claimed.sort(key=lambda c: c.id)
        return claimed

    def _claimed(self, row: Any) -> Claimed:
        return Claimed(
            id=row[0],
            dedup_key=row[1],
            lock=row[2],
            kind=row[3],
            payload=row[4] or {},
            attempts=row[5],
            created_at=_aware(row[6]),
            correlation_id=row[7],
            more_waiting=bool(row[8]),
            extra=dict(zip(self._extra_names, row[9:], strict=True)),
        )

    def _finish_statement(self, names: frozenset[str]) -> Executable:
        """``UPDATE … SET <names> WHERE id = :record_id AND still ours``, one per set of
        columns (a handful in all), built once each."""
        stmt = self._finishes.get(names)
        if stmt is None:
            t = core_table(self.table)
            stmt = (
                update(t)
                .where(
                    t.c.id == bindparam("record_id"),
                    t.c.status == RecordStatus.DOING.value,
                    t.c.worker == self.worker_id,
                )
                .values({name: bindparam(f"v_{name}") for name in sorted(names)})
            )
            self._finishes[names] = stmt
        return stmt

    def _finish_params(self, record_id: int, values: dict[str, Any]) -> dict[str, Any]:
        return {"record_id": record_id, **{f"v_{k}": v for k, v in values.items()}}

    async def _finish(self, record_id: int, **values: Any) -> bool:
        async with self.single.begin() as session:
            return await self._finish_in(session, record_id, **values)

    async def _finish_in(self, session: AsyncSession, record_id: int, **values: Any) -> bool:
        """Set ``values`` on a record still ours, in the caller's transaction; False (and a
        warning) when it is no longer ours."""
        # ``attempts`` may come as an expression (release); those few go unprepared.
        if any(isinstance(v, ColumnElement) for v in values.values()):
            t = core_table(self.table)
            stmt: Executable = (
                update(t)
                .where(
                    t.c.id == record_id,
                    t.c.status == RecordStatus.DOING.value,
                    t.c.worker == self.worker_id,
                )
                .values(**values)
            )
            params: dict[str, Any] = {}
        else:
            stmt = self._finish_statement(frozenset(values))
            params = self._finish_params(record_id, values)
        result = await session.execute(stmt, params)
        if result.rowcount == 0:  # type: ignore[attr-defined]
            # Our lease expired and someone else took the record over; their outcome wins.
            log.warning("record %s/%s was no longer ours to finish", self.name, record_id)
            return False
        return True

    async def complete_in(self, session: AsyncSession, record_id: int) -> None:
        """Mark a record done inside the caller's transaction, with the effects it wrote."""
        values = {
            "status": RecordStatus.DONE.value,
            "finished_at": utcnow(),
            "lease_expires_at": None,
        }
        result = await session.execute(
            self._finish_statement(frozenset(values)), self._finish_params(record_id, values)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            # Someone else owns it now: roll the caller's transaction back, effects and all.
            raise LeaseLost(f"{self.name}/{record_id}")

    @staticmethod
    def _done(values: dict[str, Any]) -> dict[str, Any]:
        done = {
            "status": RecordStatus.DONE.value,
            "finished_at": utcnow(),
            "lease_expires_at": None,
            "last_error": None,
            **values,
        }
        # A note kept with a done record (``Done({"last_error": …})``): redacted here, as
        # PostgreSQL's batch statement (_complete_many_statement) passes it as a plain text
        # array, past the column's ErrorText type.
        if done["last_error"]:
            done["last_error"] = redact(done["last_error"])
        return done

    async def complete(self, record_id: int, **values: Any) -> bool:
        return await self._finish(record_id, **self._done(values))

    async def complete_many_in(
        self, session: AsyncSession, items: list[tuple[int, dict[str, Any]]]
    ) -> list[bool]:
        """``complete`` for several records, in the caller's transaction; one result
        per item.  On PostgreSQL, records whose values are all text share one statement
        (``UPDATE … FROM unnest(arrays)``): a dispatcher finishing dozens of records at a
        time made a round trip for each, the larger part of what a delivery cost the worker.
        Elsewhere (SQLite: no round trips to save), and for other values, one by one."""
        results: dict[int, bool] = {}
        shared: dict[tuple[str, ...], list[tuple[int, dict[str, Any]]]] = {}
        table = core_table(self.table)
        together = self.on_postgres and len(items) > 1
        for index, (record_id, extra) in enumerate(items):
            values = self._done(extra)
            names = tuple(sorted(k for k in values if k not in _DONE_FIXED))
            textual = all(
                _is_text(table.c[n].type) and (v is None or isinstance(v, str))
                for n, v in values.items()
                if n not in _DONE_FIXED
            )
            if together and textual:
                shared.setdefault(names, []).append((index, values | {"record_id": record_id}))
            else:
                results[index] = await self._finish_in(session, record_id, **values)
        for names, rows in shared.items():
            params: dict[str, Any] = {
                "ids": [v["record_id"] for _, v in rows],
                "finished_at": utcnow(),
                "worker": self.worker_id,
                **{f"v_{n}": [v[n] for _, v in rows] for n in names},
            }
            result = await session.execute(self._complete_many_statement(names), params)
            finished = {row[0] for row in result}
            for index, v in rows:
                ours = v["record_id"] in finished
                if not ours:
                    log.warning(
                        "record %s/%s was no longer ours to finish", self.name, v["record_id"]
                    )
                results[index] = ours
        return [results[i] for i in range(len(items))]

    async def complete_many_then_claim_in(
        self, session: AsyncSession, items: list[tuple[int, dict[str, Any], str | None]]
    ) -> list[tuple[bool, Claimed | None]]:
        """``complete_many_in``, then, for the items that name their lock, the lock's next
        record if its turn has come (PostgreSQL; one statement for all of them): a worker
        that finished a customer's record goes on with their next one without waiting for
        the claim loop.  Should another process have raced for one of them, the
        one-in-flight index raises IntegrityError: in autocommit (``self.single``, what the
        dispatcher uses) the completions stand and nothing is taken; in a caller's
        transaction the error is the caller's, since the transaction is aborted."""
        done = await self.complete_many_in(session, [(rid, values) for rid, values, _ in items])
        locks = sorted({lock for ok, (_, _, lock) in zip(done, items, strict=True) if ok and lock})
        following: dict[str, Claimed] = {}
        if locks and self.on_postgres:
            now = utcnow()
            params = {"locks": locks, "now": now, "lease_until": now + self.lease}
            try:
                rows = await session.execute(self._claim_locks_statement(), params)
                following = {c.lock: c for c in map(self._claimed, rows)}
            except IntegrityError:
                if not is_autocommit(session):
                    raise
                log.debug("chained claim race on %s; the claim loop takes over", self.name)
        return [
            (ok, following.get(lock) if ok and lock else None)
            for ok, (_, _, lock) in zip(done, items, strict=True)
        ]

    def _complete_many_statement(self, names: tuple[str, ...]) -> Executable:
        stmt = self._complete_many.get(names)
        if stmt is None:
            # Text on purpose: Core has no spelling of ``FROM unnest(…) AS d(columns)``,
            # and this statement is PostgreSQL's only.
            sets = "".join(f', "{n}" = d."{n}"' for n in names)
            arrays = "".join(f", CAST(:v_{n} AS TEXT[])" for n in names)
            columns = "".join(f', "{n}"' for n in names)
            stmt = text(
                f"UPDATE \"{self.name}\" AS q SET status = '{RecordStatus.DONE.value}', "
                f"finished_at = :finished_at, lease_expires_at = NULL{sets} "
                f"FROM unnest(CAST(:ids AS BIGINT[]){arrays}) AS d(record_id{columns}) "
                f"WHERE q.id = d.record_id AND q.status = '{RecordStatus.DOING.value}' "
                "AND q.worker = :worker RETURNING q.id"
            ).bindparams(bindparam("finished_at", type_=core_table(self.table).c.finished_at.type))
            self._complete_many[names] = stmt
        return stmt

    async def retry(self, record_id: int, *, delay: float, error: str, **values: Any) -> bool:
        return await self._finish(
            record_id,
            status=RecordStatus.TODO.value,
            scheduled_at=utcnow() + dt.timedelta(seconds=delay),
            lease_expires_at=None,
            worker=None,
            last_error=error[:2000],
            **values,
        )

    async def fail(self, record_id: int, *, error: str, **values: Any) -> bool:
        return await self._finish(
            record_id,
            status=RecordStatus.FAILED.value,
            finished_at=utcnow(),
            lease_expires_at=None,
            last_error=error[:2000],
            **values,
        )

    async def discard(self, record_id: int, *, reason: str) -> bool:
        return await self._finish(
            record_id,
            status=RecordStatus.DISCARDED.value,
            finished_at=utcnow(),
            lease_expires_at=None,
            last_error=reason[:2000],
        )

    async def release(self, record_id: int) -> bool:
        """Give a claimed record back untouched (shutdown): it keeps its place in line."""
        t = core_table(self.table)
        return await self._finish(
            record_id,
            status=RecordStatus.TODO.value,
            lease_expires_at=None,
            worker=None,
            attempts=t.c.attempts - 1,
        )

    async def extend_leases(self, record_ids: list[int]) -> None:
        if not record_ids:
            return
        t = core_table(self.table)
        async with self.single.begin() as session:
            await session.execute(
                update(t)
                .where(t.c.id.in_(record_ids), t.c.worker == self.worker_id)
                .values(lease_expires_at=utcnow() + self.lease)
            )

    async def recover_expired(self, *, everything: bool = False, keep: Collection[int] = ()) -> int:
        """Put records of dead workers back in line: on PostgreSQL those whose worker is no
        longer present (``bridge.store.presence``) at once, any whose lease ran out (a
        worker alive but stuck) as the last resort.  ``everything`` is for SQLite at start,
        where only one process can exist, so nothing in flight can still be alive."""
        t = core_table(self.table)
        condition = t.c.status == RecordStatus.DOING.value
        if not everything:
            expired: ColumnElement[bool] = t.c.lease_expires_at < utcnow()
            if self.on_postgres:
                expired = or_(expired, _worker_gone(t))
            condition = and_(condition, expired)
        if keep:
            # Our own records still in flight: their lease lapsed because the database was
            # unreachable, not because we died; putting them back would send them twice.
            condition = and_(condition, t.c.id.not_in(list(keep)))
        async with self.single.begin() as session:
            result = await session.execute(
                update(t).where(condition).values(status=RecordStatus.TODO.value, worker=None)
            )
        count = int(result.rowcount or 0)  # type: ignore[attr-defined]
        if count:
            log.info("recovered %d abandoned records in %s", count, self.name)
        return count


_ACTIVITY = table("pg_stat_activity", column("application_name"), column("datname"))


def _worker_gone(t: Table) -> ColumnElement[bool]:
    """The record's worker has no session on this database (it died), and the server has
    been up long enough for live workers to have reconnected after a restart."""
    present = exists().where(
        _ACTIVITY.c.application_name == t.c.worker,
        _ACTIVITY.c.datname == func.current_database(),
    )
    settled = func.now() - func.pg_postmaster_start_time() > text(
        f"interval '{RESTART_GRACE_SECONDS} seconds'"
    )
    return and_(~present, settled)
