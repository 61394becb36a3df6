"""Writing records of both directions: the one way any rule queues work.

``to_udesk`` queues a record for Udesk (``outbound_messages``, in order per customer);
``to_telegram`` and ``say`` queue something for the customer's chat (``inbound_messages``,
in order per chat).  Each marks its queue's channel, so the commit wakes its dispatchers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bridge.core.model import OutgoingItem
from bridge.core.texts import Texts
from bridge.logs import correlation_id as current_correlation_id
from bridge.store.notify import TO_TELEGRAM, TO_UDESK, mark
from bridge.store.queue import enqueue, enqueue_many
from bridge.store.tables import Customer, InboundMessage, OutboundMessage, utcnow


def customer_lock(customer_id: int) -> str:
    return f"c:{customer_id}"


def chat_lock(chat_id: int) -> str:
    return f"chat:{chat_id}"


_GATHERED = "outbound_gathered"  # session.info: records to_udesk keeps for flush_outbound


def gather_outbound(session: AsyncSession) -> None:
    """Until ``flush_outbound``, ``to_udesk`` in this transaction keeps its records and
    ``flush_outbound`` inserts them together, in order (one INSERT for a batch of updates
    rather than one each)."""
    session.info[_GATHERED] = []


async def flush_outbound(session: AsyncSession) -> None:
    gathered: list[dict[str, Any]] | None = session.info.get(_GATHERED)
    if gathered:
        await enqueue_many(session, OutboundMessage, gathered)
        gathered.clear()


async def to_udesk(
    session: AsyncSession,
    customer: Customer,
    *,
    kind: str,
    dedup_key: str,
    payload: dict[str, Any],
    delay: float = 0.0,
) -> int | None:
    """Queue a record for Udesk; its id, or None when seen before or gathered
    (``gather_outbound``)."""
    mark(session, TO_UDESK)
    record: dict[str, Any] = {
        "dedup_key": dedup_key,
        "lock": customer_lock(customer.id),
        "kind": kind,
        "payload": payload,
        "scheduled_at": utcnow() + dt.timedelta(seconds=delay) if delay else None,
        "customer_id": customer.id,
        "correlation_id": current_correlation_id.get(),
    }
    gathered: list[dict[str, Any]] | None = session.info.get(_GATHERED)
    if gathered is not None:
        gathered.append(record)
        return None
    return await enqueue(session, OutboundMessage, **record)


async def to_telegram(
    session: AsyncSession,
    customer: Customer | None,
    item: OutgoingItem,
    *,
    dedup_key: str,
    chat_id: int | None = None,
    extra: dict[str, Any] | None = None,
    lock: str | None = None,
) -> int | None:
    """Queue something for the customer's chat (bot texts and agent messages alike)."""
    mark(session, TO_TELEGRAM)
    record = telegram_record(
        customer, item, dedup_key=dedup_key, chat_id=chat_id, extra=extra, lock=lock
    )
    return await enqueue(session, InboundMessage, **record)


async def to_telegram_many(session: AsyncSession, records: list[dict[str, Any]]) -> dict[str, int]:
    """Queue several ``telegram_record``s in one statement; the new ones' ids by dedup key."""
    mark(session, TO_TELEGRAM)
    return await enqueue_many(session, InboundMessage, records)


def telegram_record(
    customer: Customer | None,
    item: OutgoingItem,
    *,
    dedup_key: str,
    chat_id: int | None = None,
    extra: dict[str, Any] | None = None,
    lock: str | None = None,
    correlation_id: str | None = None,
) -> dict[str, Any]:
    """The inbound record that shows ``item`` in the customer's chat (``enqueue``'s
    arguments)."""
    target = chat_id if chat_id is not None else (customer.chat_id if customer else None)
    return {
        "dedup_key": dedup_key,
        "lock": lock or (chat_lock(target) if target is not None else "chat:unknown"),
        "kind": item.kind,
        "payload": {"item": item.to_dict(), **(extra or {})},
        "customer_id": customer.id if customer else None,
        "chat_id": target,
        "correlation_id": correlation_id,
    }


async def say(
    session: AsyncSession,
    texts: Texts,
    customer: Customer,
    key: str,
    *,
    dedup_key: str,
    **values: Any,
) -> int | None:
    """Queue one of the bot's sentences in the customer's language."""
    text = texts.get(key, customer.language_code, **values)
    return await to_telegram(
        session, customer, OutgoingItem(kind="text", html=text, plain=True), dedup_key=dedup_key
    )
