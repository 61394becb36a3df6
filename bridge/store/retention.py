"""Retention: what the bridge forgets on its own, and when (the purge job).

Every ``PURGE_INTERVAL`` the leader replica (``LeaderLock``) purges, in batches of
``batch_size`` rows, each batch its own short transaction, with a pause between batches so
the dispatchers' transactions never wait long behind it:

- message bodies: the ``payload`` of records that are finished (``done`` or ``discarded``)
  for longer than ``RETAIN_MESSAGE_BODIES`` becomes ``{}`` in ``outbound_messages``,
  ``inbound_messages`` and ``telegram_updates``.  The rows stay, with their ``dedup_key``,
  status and times, so a message Udesk or Telegram delivers again is still recognised and
  not delivered twice.  Records still ``todo``, ``doing`` or ``failed`` are never touched;
- media: rows and files whose link expired (``MEDIA_TTL``);
- rejected Udesk bodies older than ``RETAIN_REJECTED_PUSHES``;
- closed IM sessions (and their surveys), closed tickets and inline-button actions older
  than ``RETAIN_CLOSED_SESSIONS``.

Customers themselves are kept (the Telegram user ↔ Udesk customer mapping) until erased
(``udesk-bridge customers erase``, ``bridge.privacy.erase``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Text, cast, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bridge.metrics import PURGED
from bridge.store.tables import (
    Base,
    ButtonAction,
    ImSession,
    InboundMessage,
    Media,
    OutboundMessage,
    QueueColumns,
    RecordStatus,
    RejectedPush,
    SessionState,
    Survey,
    TelegramUpdate,
    Ticket,
    utcnow,
)

if TYPE_CHECKING:
    from bridge.settings import Settings

log = logging.getLogger("bridge.store.retention")

DAY = 86400.0
FINISHED = (RecordStatus.DONE.value, RecordStatus.DISCARDED.value)
QUEUE_TABLES: tuple[tuple[type[QueueColumns], str], ...] = (
    (OutboundMessage, "outbound_payloads"),
    (InboundMessage, "inbound_payloads"),
    (TelegramUpdate, "update_payloads"),
)
EMPTY = "{}"  # a blanked payload, as stored (JSON text)
CLOSED_TICKET = "closed"  # bridge.core.tickets.CLOSED


@dataclass(frozen=True)
class Retention:
    """How long things are kept, in seconds (0: purged at the next run)."""

    message_bodies: float = 30 * DAY
    rejected_pushes: float = 14 * DAY
    closed_sessions: float = 90 * DAY

    @classmethod
    def from_settings(cls, settings: Settings) -> Retention:
        return cls(
            message_bodies=settings.retain_message_bodies,
            rejected_pushes=settings.retain_rejected_pushes,
            closed_sessions=settings.retain_closed_sessions,
        )


class Purger:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        retention: Retention,
        *,
        leader: Callable[[], Awaitable[bool]] | None = None,
        interval: float = 3600.0,
        first_delay: float = 60.0,
        batch_size: int = 500,
        pause: float = 0.1,
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.sessions = sessions
        self.retention = retention
        self.leader = leader
        self.interval = interval
        self.first_delay = first_delay
        self.batch_size = batch_size
        self.pause = pause
        self.now = now

    async def run(self) -> None:
        """The periodic job: forever, on the leader only; a failed run is retried next time."""
        await asyncio.sleep(self.first_delay)
        while True:
            if self.leader is None or await self.leader():
                try:
                    await self.purge()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("purge run failed (%s); next run as usual", type(exc).__name__)
                    log.debug("purge run failed", exc_info=True)
            await asyncio.sleep(self.interval)

    async def purge(self) -> dict[str, int]:
        """One run of every rule; returns what was purged, by kind."""
        now = self.now()
        r = self.retention
        bodies = now - dt.timedelta(seconds=r.message_bodies)
        closed = now - dt.timedelta(seconds=r.closed_sessions)
        done: dict[str, int] = {}
        for table, what in QUEUE_TABLES:
            done[what] = await self._blank_payloads(table, what, bodies)
        done["media"] = await self._media(now)
        done["rejected_pushes"] = await self._delete(
            RejectedPush,
            "rejected_pushes",
            RejectedPush.created_at < now - dt.timedelta(seconds=r.rejected_pushes),
        )
        done["surveys"], done["sessions"] = await self._closed_sessions(closed)
        done["tickets"] = await self._delete(
            Ticket, "tickets", (Ticket.status == CLOSED_TICKET) & (Ticket.updated_at < closed)
        )
        done["button_actions"] = await self._delete(
            ButtonAction, "button_actions", ButtonAction.created_at < closed
        )
        purged = {k: v for k, v in done.items() if v}
        if purged:
            log.info("purged %s", ", ".join(f"{v} {k}" for k, v in purged.items()))
        return done

    # --- the rules ----------------------------------------------------------------------

    async def _blank_payloads(
        self, table: type[QueueColumns], what: str, cutoff: dt.datetime
    ) -> int:
        t = table
        total = 0
        last = 0
        while True:
            async with self.sessions.begin() as s:
                ids = list(
                    (
                        await s.scalars(
                            select(t.id)
                            .where(
                                t.id > last,
                                t.status.in_(FINISHED),
                                func.coalesce(t.finished_at, t.created_at) < cutoff,
                                cast(t.payload, Text) != EMPTY,
                            )
                            .order_by(t.id)
                            .limit(self.batch_size)
                        )
                    ).all()
                )
                if not ids:
                    break
                result = await s.execute(
                    update(t)
                    .where(t.id.in_(ids), t.status.in_(FINISHED))
                    .values(payload={})
                    .execution_options(synchronize_session=False)
                )
            total += self._count(what, result)
            last = ids[-1]
            if len(ids) < self.batch_size:
                break
            await asyncio.sleep(self.pause)
        return total

    async def _media(self, now: dt.datetime) -> int:
        """Expired media: the file first, then the row (a row without a file is harmless,
        a file without a row would never be found again)."""
        total = 0
        last = 0
        while True:
            async with self.sessions() as s:
                rows = (
                    await s.execute(
                        select(Media.id, Media.path)
                        .where(Media.id > last, Media.expires_at < now)
                        .order_by(Media.id)
                        .limit(self.batch_size)
                    )
                ).all()
            if not rows:
                break
            kept = await asyncio.to_thread(_remove_files, {i: str(p) for i, p in rows})
            async with self.sessions.begin() as s:
                result = await s.execute(
                    delete(Media)
                    .where(Media.id.in_([row_id for row_id, _ in rows if row_id not in kept]))
                    .execution_options(synchronize_session=False)
                )
            total += self._count("media", result)
            last = rows[-1][0]
            if len(rows) < self.batch_size:
                break
            await asyncio.sleep(self.pause)
        return total

    async def _closed_sessions(self, cutoff: dt.datetime) -> tuple[int, int]:
        surveys = sessions = 0
        while True:
            async with self.sessions.begin() as s:
                ids = list(
                    (
                        await s.scalars(
                            select(ImSession.id)
                            .where(
                                ImSession.state == SessionState.CLOSED.value,
                                func.coalesce(ImSession.closed_at, ImSession.updated_at) < cutoff,
                            )
                            .order_by(ImSession.id)
                            .limit(self.batch_size)
                        )
                    ).all()
                )
                if not ids:
                    break
                gone_surveys = await s.execute(
                    delete(Survey)
                    .where(Survey.session_id.in_(ids))
                    .execution_options(synchronize_session=False)
                )
                gone_sessions = await s.execute(
                    delete(ImSession)
                    .where(ImSession.id.in_(ids), ImSession.state == SessionState.CLOSED.value)
                    .execution_options(synchronize_session=False)
                )
            surveys += self._count("surveys", gone_surveys)
            sessions += self._count("sessions", gone_sessions)
            if len(ids) < self.batch_size:
                break
            await asyncio.sleep(self.pause)
        return surveys, sessions

    async def _delete(self, table: type[Base], what: str, condition: ColumnElement[bool]) -> int:
        id_column: Any = table.id  # type: ignore[attr-defined]
        total = 0
        while True:
            async with self.sessions.begin() as s:
                ids = list(
                    (
                        await s.scalars(
                            select(id_column)
                            .where(condition)
                            .order_by(id_column)
                            .limit(self.batch_size)
                        )
                    ).all()
                )
                if not ids:
                    break
                result = await s.execute(
                    delete(table)
                    .where(id_column.in_(ids))
                    .execution_options(synchronize_session=False)
                )
            total += self._count(what, result)
            if len(ids) < self.batch_size:
                break
            await asyncio.sleep(self.pause)
        return total

    @staticmethod
    def _count(what: str, result: Any) -> int:
        n = int(result.rowcount or 0)
        if n:
            PURGED.labels(what=what).inc(n)
        return n


def _remove_files(paths: dict[int, str]) -> set[int]:
    """Remove the files; returns the media ids whose file could not be removed (their rows
    stay, so the next run tries again)."""
    failed = set()
    for media_id, name in paths.items():
        try:
            Path(name).unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not remove expired media %s (%s)", media_id, type(exc).__name__)
            failed.add(media_id)
    return failed
