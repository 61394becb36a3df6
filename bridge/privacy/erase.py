"""Erasing one person, in the bridge and in Udesk: resumable, step by step.

An erasure is a row of ``erasures`` (``bridge.privacy.tables``) and these steps, in order:

``local_records``
    one transaction deletes the person's rows in every table (``bridge.privacy.records``)
    and notes their media files in the erasure row;
``media_files``
    those files are removed from ``MEDIA_DIR`` (a file already gone is fine);
``udesk_close``
    an IM session still open in Udesk is closed (or the queue left): Udesk deletes closed
    sessions only;
``udesk_sessions``
    ``DELETE /im/sessions/destroy_session`` with the person's Udesk ``customer_id`` from the
    day before the bridge first saw them to the day after now (never without a
    ``customer_id``: that would delete every customer's sessions in the range);
``udesk_customer``
    ``DELETE /customers/destroy_customer?type=token`` (an unknown customer is fine).

Each step is idempotent and is marked done in the erasure row once it succeeded; a failure
(Udesk down, say) stops the run with the steps done so far kept, and running the erasure
again for the same user resumes the pending row, which holds the Udesk customer id, token,
time range and files the remaining steps need after the customer row is gone.  Once every
step is done those are cleared (``forget_identity``): the completed row is only the record
that the Telegram user was erased, which steps ran and when.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bridge.core.errors import PermanentError, SessionGone, TransientError
from bridge.core.ports import UdeskGateway
from bridge.privacy import records
from bridge.privacy.tables import Erasure
from bridge.store.tables import (
    Customer,
    ImSession,
    Media,
    OutboundMessage,
    RejectedPush,
    SessionState,
    utcnow,
)

log = logging.getLogger("bridge.privacy.erase")

STEPS = ("local_records", "media_files", "udesk_close", "udesk_sessions", "udesk_customer")
# Udesk reads destroy_session's times in the company's time zone (China time); the day of
# margin on each side covers any other.
UDESK_TZ = dt.timezone(dt.timedelta(hours=8))
MARGIN = dt.timedelta(days=1)
# When the bridge never saw the person (no customer row), the range starts here.
EARLIEST = dt.datetime(2010, 1, 1, tzinfo=dt.UTC)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


# A deep link (bridge.core.deeplinks) can tie the Telegram user to the company's own Udesk
# customer (a web or SDK identity).  Erasing the Telegram user must not delete that
# customer, nor its IM records from other channels: the company erases it in Udesk itself.
LINKED_NOTE = "skipped: linked to the company's own Udesk customer; erase it in Udesk"


def linked(erasure: Erasure) -> bool:
    return not erasure.customer_token.startswith("tg-")


@dataclass
class ErasureReport:
    """What an erasure did (or, for a dry run, would do)."""

    telegram_user_id: int
    dry_run: bool
    erasure_id: int | None = None
    complete: bool = False
    steps_done: dict[str, Any] = field(default_factory=dict)
    remaining: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    udesk_calls: list[str] = field(default_factory=list)
    error: str | None = None
    transient: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "telegram_user_id": self.telegram_user_id,
            "dry_run": self.dry_run,
            "erasure_id": self.erasure_id,
            "complete": self.complete,
            "steps_done": self.steps_done,
            "remaining": self.remaining,
            "rows": self.rows,
            "files": self.files,
            "udesk_calls": self.udesk_calls,
            "error": self.error,
        }


def udesk_time(value: dt.datetime) -> str:
    return records.aware(value).astimezone(UDESK_TZ).strftime(TIME_FORMAT)


class Eraser:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        udesk: UdeskGateway,
        *,
        media_dir: Path | None = None,
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.udesk = udesk
        self.media_dir = media_dir
        self.now = now

    # --- dry run ------------------------------------------------------------------------

    async def plan(self, telegram_user_id: int) -> ErasureReport:
        """What ``erase`` would do now; reads only, calls nobody."""
        report = ErasureReport(telegram_user_id, dry_run=True)
        async with self.sessions() as s:
            pending = await _pending(s, telegram_user_id)
            person, customer = await records.find_person(
                s,
                telegram_user_id,
                token=pending.customer_token if pending else None,
                chat_id=pending.chat_id if pending else None,
            )
            if pending is None:
                draft = _new_erasure(person, customer, "dry-run")
            else:
                s.expunge(pending)  # a dry run changes nothing, not even by autoflush
                draft = pending
                report.erasure_id = pending.id
                report.steps_done = dict(pending.steps)
            await _capture(s, draft, customer)
            done = set(draft.steps)
            if "local_records" not in done:
                report.rows = await records.counts(s, person)
                report.files = await self._media_paths(s, person)
            elif "media_files" not in done:
                report.files = list(draft.media_files)
        report.remaining = [step for step in STEPS if step not in done]
        report.udesk_calls = self._udesk_calls(draft, done)
        return report

    def _udesk_calls(self, e: Erasure, done: set[str]) -> list[str]:
        calls = []
        if "udesk_close" not in done and e.udesk_open:
            if e.udesk_open.get("im_sub_session_id"):
                calls.append(f"DELETE /im/sessions/{e.udesk_open['im_sub_session_id']}")
            elif e.udesk_open.get("queue_name"):
                calls.append(
                    f"DELETE /im/sessions/close_queue?customer_token={e.customer_token}"
                    f"&queue={e.udesk_open['queue_name']}"
                )
        if linked(e):
            return calls
        if "udesk_sessions" not in done:
            start, end = self._range(e)
            who = (
                str(e.udesk_customer_id)
                if e.udesk_customer_id
                else "(looked up by token; skipped if Udesk has no such customer)"
            )
            if not e.udesk_customer_id:
                calls.append(f"GET /customers/get_customer?type=token&content={e.customer_token}")
            calls.append(
                f"DELETE /im/sessions/destroy_session?start_time={udesk_time(start)}"
                f"&end_time={udesk_time(end)}&customer_id={who}"
            )
        if "udesk_customer" not in done:
            calls.append(
                f"DELETE /customers/destroy_customer?type=token&content={e.customer_token}"
            )
        return calls

    def _range(self, e: Erasure) -> tuple[dt.datetime, dt.datetime]:
        first = records.aware(e.first_seen_at) if e.first_seen_at else EARLIEST
        return first - MARGIN, self.now() + MARGIN

    async def _media_paths(self, s: AsyncSession, person: records.Person) -> list[str]:
        rows = (
            await s.execute(select(Media.token, Media.path).where(records.where(person, Media)))
        ).all()
        paths: set[str] = set()
        for token, path in rows:
            paths.add(str(path))
            if self.media_dir is not None:
                # The daemon's MEDIA_DIR may be relative to another working directory.
                paths.add(str(self.media_dir / token[:2] / token))
        return sorted(paths)

    # --- the erasure --------------------------------------------------------------------

    async def erase(
        self,
        telegram_user_id: int,
        *,
        requested_by: str = "cli",
        keep_outbound: Collection[int] = (),
    ) -> ErasureReport:
        """Erase the person, or complete their pending erasure; never raises for Udesk's
        failures (``report.error`` says what stopped it, and running again resumes).

        ``keep_outbound``: outbound records not to delete (the /forget record being
        handled, which the dispatcher still has to finish)."""
        report = ErasureReport(telegram_user_id, dry_run=False)
        erasure_id = await self._start(telegram_user_id, requested_by)
        report.erasure_id = erasure_id
        for step in STEPS:
            async with self.sessions() as s:
                erasure = await s.get(Erasure, erasure_id)
            assert erasure is not None
            if step in erasure.steps:
                continue
            try:
                if step == "local_records":
                    await self._local_records(erasure_id, report, keep_outbound)
                    continue  # marked done in its own transaction
                note = await getattr(self, f"_{step}")(erasure, report)
            except (TransientError, PermanentError) as exc:
                report.error = f"{step}: {type(exc).__name__}: {exc}"[:1000]
                report.transient = isinstance(exc, TransientError)
                await self._update(erasure_id, last_error=report.error)
                log.warning(
                    "erasure %s stopped at %s (%s); run it again to resume",
                    erasure_id,
                    step,
                    type(exc).__name__,
                )
                break
            await self._mark(erasure_id, step, note)
        async with self.sessions.begin() as s:
            erasure = await s.get(Erasure, erasure_id)
            assert erasure is not None
            report.steps_done = dict(erasure.steps)
            report.remaining = [step for step in STEPS if step not in erasure.steps]
            if not report.remaining and erasure.completed_at is None:
                erasure.completed_at = self.now()
                erasure.last_error = None
                forget_identity(erasure)
            report.complete = not report.remaining
        if report.complete:
            log.info("erasure %s of a customer completed", erasure_id)
        return report

    async def _start(self, telegram_user_id: int, requested_by: str) -> int:
        async with self.sessions.begin() as s:
            pending = await _pending(s, telegram_user_id)
            if pending is not None:
                return pending.id
            person, customer = await records.find_person(s, telegram_user_id)
            erasure = _new_erasure(person, customer, requested_by)
            await _capture(s, erasure, customer)
            s.add(erasure)
            await s.flush()
            log.info("erasure %s started (%s)", erasure.id, requested_by)
            return erasure.id

    async def _local_records(
        self, erasure_id: int, report: ErasureReport, keep_outbound: Collection[int]
    ) -> None:
        async with self.sessions.begin() as s:
            erasure = await s.get(Erasure, erasure_id)
            assert erasure is not None
            person, customer = await records.find_person(
                s, erasure.telegram_user_id, token=erasure.customer_token, chat_id=erasure.chat_id
            )
            await _capture(s, erasure, customer)
            files = await self._media_paths(s, person)
            erasure.media_files = sorted(set(erasure.media_files or []) | set(files))
            pushes = await records.rejected_push_ids(s, person)
            for table in records.TABLES:
                name = str(table.__tablename__)
                condition: ColumnElement[bool]
                if table is RejectedPush:
                    condition = RejectedPush.id.in_(pushes)
                else:
                    condition = records.where(person, table)
                if table is OutboundMessage and keep_outbound:
                    condition = and_(condition, OutboundMessage.id.not_in(list(keep_outbound)))
                result = await s.execute(
                    delete(table).where(condition).execution_options(synchronize_session=False)
                )
                report.rows[name] = int(result.rowcount or 0)  # type: ignore[attr-defined]
            erasure.steps = {**erasure.steps, "local_records": _stamp(self.now())}

    async def _media_files(self, erasure: Erasure, report: ErasureReport) -> str:
        removed = 0
        for name in erasure.media_files or []:
            if await asyncio.to_thread(_unlink, Path(name)):
                removed += 1
                report.files.append(name)
        return f"{removed} removed"

    async def _udesk_close(self, erasure: Erasure, _report: ErasureReport) -> str:
        opened = erasure.udesk_open or {}
        try:
            if opened.get("im_sub_session_id"):
                await self.udesk.close_session(int(opened["im_sub_session_id"]))
                return "closed"
            if opened.get("queue_name"):
                await self.udesk.leave_queue(erasure.customer_token, str(opened["queue_name"]))
                return "left the queue"
        except SessionGone:
            return "already closed"
        except PermanentError as exc:
            # Deleting the customer ends whatever is still open; do not get stuck here.
            return f"not closed ({type(exc).__name__})"
        return "nothing open"

    async def _udesk_sessions(self, erasure: Erasure, report: ErasureReport) -> str:
        if linked(erasure):
            return LINKED_NOTE
        customer_id = erasure.udesk_customer_id
        if not customer_id:
            customer_id = await self.udesk.find_customer_id(erasure.customer_token)
            if not customer_id:
                return "skipped: no such Udesk customer"
            await self._update(erasure.id, udesk_customer_id=customer_id)
        start, end = self._range(erasure)
        await self.udesk.destroy_im_sessions(
            int(customer_id), start.astimezone(UDESK_TZ), end.astimezone(UDESK_TZ)
        )
        report.udesk_calls.append(
            f"DELETE /im/sessions/destroy_session?start_time={udesk_time(start)}"
            f"&end_time={udesk_time(end)}&customer_id={customer_id}"
        )
        return f"{udesk_time(start)} .. {udesk_time(end)}"

    async def _udesk_customer(self, erasure: Erasure, report: ErasureReport) -> str:
        if linked(erasure):
            return LINKED_NOTE
        found = await self.udesk.destroy_customer(erasure.customer_token)
        report.udesk_calls.append(
            f"DELETE /customers/destroy_customer?type=token&content={erasure.customer_token}"
        )
        return "deleted" if found else "skipped: no such Udesk customer"

    async def _mark(self, erasure_id: int, step: str, note: str | None) -> None:
        async with self.sessions.begin() as s:
            erasure = await s.get(Erasure, erasure_id)
            assert erasure is not None
            if step not in erasure.steps:
                value = _stamp(self.now()) + (f" ({note})" if note else "")
                erasure.steps = {**erasure.steps, step: value}

    async def _update(self, erasure_id: int, **values: Any) -> None:
        async with self.sessions.begin() as s:
            erasure = await s.get(Erasure, erasure_id)
            assert erasure is not None
            for key, value in values.items():
                setattr(erasure, key, value)


def forget_identity(erasure: Erasure) -> None:
    """Clear what the erasure row kept only so the remaining steps could run: once it is
    complete, the row must not be the last place that still holds the person's token, Udesk
    ids, chat, first contact or file names.  The steps stay (what was done, when, and the
    time range destroy_session was given): they are the record of the erasure.  Migration
    0004 does the same to rows completed before this existed."""
    erasure.customer_token = ""  # the column is NOT NULL; empty means cleared
    erasure.udesk_customer_id = None
    erasure.chat_id = None
    erasure.first_seen_at = None
    erasure.udesk_open = None
    erasure.media_files = []


async def _pending(s: AsyncSession, telegram_user_id: int) -> Erasure | None:
    result: Erasure | None = await s.scalar(
        select(Erasure)
        .where(Erasure.telegram_user_id == telegram_user_id, Erasure.completed_at.is_(None))
        .order_by(Erasure.id.desc())
        .limit(1)
    )
    return result


def _new_erasure(person: records.Person, customer: Customer | None, requested_by: str) -> Erasure:
    return Erasure(
        telegram_user_id=person.telegram_user_id,
        customer_token=person.customer_token,
        chat_id=customer.chat_id if customer is not None else person.telegram_user_id,
        udesk_customer_id=None,
        first_seen_at=None,
        udesk_open=None,
        media_files=[],
        steps={},
        requested_by=requested_by[:40],
    )


async def _capture(s: AsyncSession, erasure: Erasure, customer: Customer | None) -> None:
    """Copy into the erasure row what the Udesk steps need from the customer's rows."""
    if customer is None:
        return
    if customer.udesk_customer_id:
        erasure.udesk_customer_id = customer.udesk_customer_id
    rows = (await s.scalars(select(ImSession).where(ImSession.customer_id == customer.id))).all()
    seen = [records.aware(customer.created_at), *(records.aware(r.created_at) for r in rows)]
    if erasure.first_seen_at is not None:
        seen.append(records.aware(erasure.first_seen_at))
    erasure.first_seen_at = min(seen)
    for row in rows:
        if row.state == SessionState.AGENT.value and row.im_sub_session_id:
            erasure.udesk_open = {"im_sub_session_id": int(row.im_sub_session_id)}
        elif row.state == SessionState.QUEUED.value and row.queue_name:
            erasure.udesk_open = {"queue_name": row.queue_name}


def _stamp(now: dt.datetime) -> str:
    return records.aware(now).isoformat(timespec="seconds")


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
