"""Where one person's rows are, in every table (shared by export, erasure and dry run).

A person is a Telegram user.  Their rows are found by our ``customers.id`` (sessions,
tickets, buttons, media, records of both directions), by their chat (Telegram updates and
inbound records are locked per chat; a private chat's id is the user's id) and by their
Udesk ``customer_token`` (pushes for a token the bridge did not know, kept undelivered).
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.core import recording
from bridge.store import customers as customer_repo
from bridge.store.tables import (
    Base,
    ButtonAction,
    Customer,
    ImSession,
    InboundMessage,
    Media,
    OutboundMessage,
    RejectedPush,
    Survey,
    TelegramUpdate,
    Ticket,
)

# The order rows are deleted in: children before parents.
TABLES: tuple[type[Base], ...] = (
    Survey,
    ImSession,
    Ticket,
    ButtonAction,
    Media,
    OutboundMessage,
    InboundMessage,
    TelegramUpdate,
    RejectedPush,
    Customer,
)


@dataclass(frozen=True)
class Person:
    telegram_user_id: int
    customer_id: int | None
    customer_token: str
    chat_ids: tuple[int, ...]


async def find_person(
    s: AsyncSession,
    telegram_user_id: int,
    *,
    token: str | None = None,
    chat_id: int | None = None,
) -> tuple[Person, Customer | None]:
    """The person as the database knows them now (``token``/``chat_id`` from an erasure
    record when the customer row is already gone)."""
    customer = await customer_repo.get_by_user(s, telegram_user_id)
    chats = {telegram_user_id}
    if chat_id is not None:
        chats.add(chat_id)
    if customer is not None and customer.chat_type == "private":
        chats.add(customer.chat_id)
    person = Person(
        telegram_user_id=telegram_user_id,
        customer_id=customer.id if customer is not None else None,
        customer_token=(
            customer.customer_token
            if customer is not None
            else token or customer_repo.token_for(telegram_user_id)
        ),
        chat_ids=tuple(sorted(chats)),
    )
    return person, customer


def where(person: Person, table: type[Base]) -> ColumnElement[bool]:
    """The condition selecting the person's rows of ``table`` (not RejectedPush: see
    ``rejected_push_ids``)."""
    cid = person.customer_id
    chat_locks = [recording.chat_lock(c) for c in person.chat_ids]
    if table is Customer:
        return Customer.telegram_user_id == person.telegram_user_id
    if table is OutboundMessage:
        if cid is None:
            return false()
        return or_(
            OutboundMessage.customer_id == cid, OutboundMessage.lock == recording.customer_lock(cid)
        )
    if table is InboundMessage:
        conditions: list[ColumnElement[bool]] = [
            InboundMessage.chat_id.in_(person.chat_ids),
            InboundMessage.lock.in_([*chat_locks, f"unknown:{person.customer_token}"[:100]]),
        ]
        if cid is not None:
            conditions.append(InboundMessage.customer_id == cid)
        return or_(*conditions)
    if table is TelegramUpdate:
        return TelegramUpdate.lock.in_(chat_locks)
    if table is RejectedPush:
        return false()
    if cid is None:
        return false()
    if table is Survey:
        return Survey.session_id.in_(select(ImSession.id).where(ImSession.customer_id == cid))
    column = getattr(table, "customer_id", None)
    if column is None:
        raise ValueError(f"no rule for {table.__tablename__}")
    return column == cid  # type: ignore[no-any-return]


async def rejected_push_ids(s: AsyncSession, person: Person, *, batch: int = 500) -> list[int]:
    """Kept unparseable Udesk bodies that name the person's customer_token."""
    needle = f'"{person.customer_token}"'.encode()
    found: list[int] = []
    last = 0
    while True:
        rows = (
            await s.execute(
                select(RejectedPush.id, RejectedPush.body)
                .where(RejectedPush.id > last)
                .order_by(RejectedPush.id)
                .limit(batch)
            )
        ).all()
        if not rows:
            return found
        for row_id, body in rows:
            if needle in bytes(body or b""):
                found.append(row_id)
        last = rows[-1][0]


async def counts(s: AsyncSession, person: Person) -> dict[str, int]:
    """Rows per table that belong to the person."""
    result: dict[str, int] = {}
    for table in TABLES:
        name = str(table.__tablename__)
        if table is RejectedPush:
            result[name] = len(await rejected_push_ids(s, person))
            continue
        result[name] = int(
            await s.scalar(select(func.count()).select_from(table).where(where(person, table))) or 0
        )
    return result


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands datetimes back naive; we store UTC
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat()


def aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def row_json(row: Base, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every column of a row, JSON-ready (times as ISO 8601, bytes as text or base64)."""
    out: dict[str, Any] = {}
    for column in row.__table__.columns:
        if column.key in skip:
            continue
        value = getattr(row, column.key)
        if isinstance(value, dt.datetime):
            value = iso(value)
        elif isinstance(value, bytes | bytearray | memoryview):
            raw = bytes(value)
            try:
                value = raw.decode("utf-8")
            except UnicodeDecodeError:
                value = {"base64": base64.b64encode(raw).decode("ascii")}
        out[column.key] = value
    return out
