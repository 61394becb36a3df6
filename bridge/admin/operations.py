"""The admin API's reads and actions, on the database and Udesk; no HTTP here.

Failures an operator can act on are ``AdminError`` with an HTTP status, a code and a
sentence; ``bridge.web.admin`` turns them into the JSON error shape.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bridge.core import recording
from bridge.core.errors import PermanentError, SessionGone, TransientError
from bridge.core.ports import UdeskGateway
from bridge.core.texts import Texts
from bridge.privacy.erase import Eraser
from bridge.privacy.export import export_person
from bridge.store import sessions as session_repo
from bridge.store.notify import TO_TELEGRAM, TO_UDESK, mark
from bridge.store.tables import (
    OPEN_STATES,
    Customer,
    ImSession,
    InboundMessage,
    OutboundMessage,
    QueueColumns,
    RecordStatus,
    SessionState,
    utcnow,
)

STATES = tuple(s.value for s in SessionState)
DIRECTIONS: dict[str, tuple[type[QueueColumns], str]] = {
    "outbound": (OutboundMessage, TO_UDESK),
    "inbound": (InboundMessage, TO_TELEGRAM),
}


class AdminError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands them back naive; we store UTC
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat()


def session_json(row: ImSession, customer: Customer | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "customer_token": customer.customer_token if customer else None,
        "telegram_user_id": customer.telegram_user_id if customer else None,
        "state": row.state,
        "assign_type": row.assign_type,
        "agent_id": row.agent_id,
        "agent_name": row.agent_name,
        "queue_name": row.queue_name,
        "queue_position": row.queue_position,
        "rule_name": row.rule_name,
        "im_sub_session_id": row.im_sub_session_id,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "closed_at": _iso(row.closed_at),
    }


def record_json(direction: str, row: QueueColumns) -> dict[str, Any]:
    payload: dict[str, Any] = row.payload or {}
    inner = payload.get("item")
    item: dict[str, Any] = inner if isinstance(inner, dict) else payload
    return {
        "direction": direction,
        "id": row.id,
        "kind": row.kind,
        "status": row.status,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "text": item.get("html") or None,
        "payload": payload,
        "dedup_key": row.dedup_key,
        "created_at": _iso(row.created_at),
        "scheduled_at": _iso(row.scheduled_at),
        "finished_at": _iso(row.finished_at),
    }


@dataclass
class AdminOps:
    sessions: async_sessionmaker[AsyncSession]
    udesk: UdeskGateway
    texts: Any  # () -> Texts: the texts in force (routing reloads change them)
    media_dir: Path | None = None  # MEDIA_DIR, for erasures

    async def export_customer(self, telegram_user_id: int) -> dict[str, Any]:
        return await export_person(self.sessions, telegram_user_id)

    async def erase_customer(self, telegram_user_id: int, *, dry_run: bool) -> dict[str, Any]:
        eraser = Eraser(self.sessions, self.udesk, media_dir=self.media_dir)
        if dry_run:
            return (await eraser.plan(telegram_user_id)).to_json()
        report = await eraser.erase(telegram_user_id, requested_by="admin")
        if not report.complete:
            raise AdminError(
                503 if report.transient else 502,
                "erasure_incomplete",
                f"erasure {report.erasure_id} stopped at {report.error}; done: "
                f"{', '.join(report.steps_done) or 'nothing'}; remaining: "
                f"{', '.join(report.remaining)}. POST again to resume.",
            )
        return report.to_json()

    # --- reads ---------------------------------------------------------------------------

    async def list_sessions(self, state: str | None, limit: int) -> list[dict[str, Any]]:
        query = select(ImSession, Customer).join(Customer, Customer.id == ImSession.customer_id)
        if state is None:
            query = query.where(ImSession.state.in_(OPEN_STATES)).order_by(ImSession.id)
        elif state == SessionState.QUEUED.value:
            query = query.where(ImSession.state == state).order_by(
                ImSession.queue_position.is_(None),
                ImSession.queue_position,
                ImSession.created_at,
                ImSession.id,
            )
        elif state == SessionState.CLOSED.value:
            query = query.where(ImSession.state == state).order_by(ImSession.id.desc())
        else:
            query = query.where(ImSession.state == state).order_by(ImSession.id)
        async with self.sessions() as s:
            rows = (await s.execute(query.limit(limit))).all()
        return [session_json(row, customer) for row, customer in rows]

    async def queue(self) -> list[dict[str, Any]]:
        return await self.list_sessions(SessionState.QUEUED.value, 10_000)

    async def customer_messages(self, telegram_user_id: int, limit: int) -> dict[str, Any]:
        async with self.sessions() as s:
            customer = await s.scalar(
                select(Customer).where(Customer.telegram_user_id == telegram_user_id)
            )
            if customer is None:
                raise AdminError(
                    404, "unknown_customer", f"no customer with telegram user id {telegram_user_id}"
                )
            out = (
                await s.scalars(
                    select(OutboundMessage)
                    .where(OutboundMessage.customer_id == customer.id)
                    .order_by(OutboundMessage.id.desc())
                    .limit(limit)
                )
            ).all()
            inb = (
                await s.scalars(
                    select(InboundMessage)
                    .where(
                        or_(
                            InboundMessage.customer_id == customer.id,
                            InboundMessage.chat_id == customer.chat_id,
                        )
                    )
                    .order_by(InboundMessage.id.desc())
                    .limit(limit)
                )
            ).all()
        records = [record_json("outbound", r) for r in out]
        records += [record_json("inbound", r) for r in inb]
        records.sort(key=lambda r: (r["created_at"] or "", r["direction"], r["id"]), reverse=True)
        return {
            "customer": {
                "telegram_user_id": customer.telegram_user_id,
                "customer_token": customer.customer_token,
                "chat_id": customer.chat_id,
                "language_code": customer.language_code,
            },
            "messages": records[:limit],
        }

    # --- actions -------------------------------------------------------------------------

    async def close_session(self, session_id: int) -> dict[str, Any]:
        async with self.sessions() as s:
            row = await s.get(ImSession, session_id)
            customer = await s.get(Customer, row.customer_id) if row is not None else None
        if row is None or customer is None:
            raise AdminError(404, "unknown_session", f"no session {session_id}")
        if row.state == SessionState.CLOSED.value:
            raise AdminError(409, "already_closed", f"session {session_id} is already closed")
        try:
            if row.state == SessionState.AGENT.value and row.im_sub_session_id:
                await self.udesk.close_session(int(row.im_sub_session_id))
            elif row.state == SessionState.QUEUED.value and row.queue_name:
                await self.udesk.leave_queue(customer.customer_token, row.queue_name)
        except SessionGone:
            pass  # already over on Udesk's side: the outcome we wanted
        except TransientError as exc:
            raise AdminError(
                503, "udesk_unavailable", f"Udesk did not answer; nothing changed: {exc}"
            ) from None
        except PermanentError as exc:
            raise AdminError(
                502, "udesk_error", f"Udesk refused to close it; nothing changed: {exc}"
            ) from None
        async with self.sessions.begin() as s:
            current = await s.get(ImSession, session_id)
            assert current is not None
            if current.state != SessionState.CLOSED.value:
                session_repo.close(current)
                texts: Texts = self.texts()
                await recording.say(
                    s, texts, customer, "session_closed", dedup_key=f"admin-close:{session_id}"
                )
            await s.flush()
            result = session_json(current, customer)
        return result

    def _table(self, direction: str) -> tuple[type[QueueColumns], str]:
        if direction not in DIRECTIONS:
            raise AdminError(404, "unknown_direction", "direction is outbound or inbound")
        return DIRECTIONS[direction]

    async def _current(self, s: AsyncSession, direction: str, record_id: int) -> QueueColumns:
        table, _ = self._table(direction)
        row = await s.get(table, record_id, populate_existing=True)
        if row is None:
            raise AdminError(404, "unknown_message", f"no {direction} record {record_id}")
        return row

    async def retry(self, direction: str, record_id: int) -> dict[str, Any]:
        """A failed record goes back in line, due now, and its dispatcher is woken."""
        table, channel = self._table(direction)
        async with self.sessions.begin() as s:
            result = await s.execute(
                update(table)
                .where(table.id == record_id, table.status == RecordStatus.FAILED.value)
                .values(
                    status=RecordStatus.TODO.value,
                    scheduled_at=utcnow(),
                    finished_at=None,
                    lease_expires_at=None,
                    worker=None,
                )
            )
            row = await self._current(s, direction, record_id)
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise AdminError(
                    409,
                    "not_failed",
                    f"{direction} record {record_id} is {row.status}; only failed ones are retried",
                )
            mark(s, channel)
            answer = record_json(direction, row)
        return answer

    async def discard(self, direction: str, record_id: int) -> dict[str, Any]:
        """A failed or waiting record is dropped for good (kept, marked discarded)."""
        table, _ = self._table(direction)
        allowed = (RecordStatus.FAILED.value, RecordStatus.TODO.value)
        async with self.sessions.begin() as s:
            result = await s.execute(
                update(table)
                .where(table.id == record_id, table.status.in_(allowed))
                .values(status=RecordStatus.DISCARDED.value, finished_at=utcnow())
            )
            row = await self._current(s, direction, record_id)
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise AdminError(
                    409,
                    "not_discardable",
                    f"{direction} record {record_id} is {row.status}; "
                    "only failed or waiting (todo) ones can be discarded",
                )
            return record_json(direction, row)
