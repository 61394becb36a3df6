"""Everything the bridge holds about one Telegram user, as JSON (the right of access)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bridge.privacy import records
from bridge.privacy.tables import Erasure
from bridge.store.tables import (
    Base,
    ButtonAction,
    ImSession,
    InboundMessage,
    Media,
    OutboundMessage,
    RejectedPush,
    Survey,
    TelegramUpdate,
    Ticket,
    utcnow,
)

# Operational columns of the queue tables that say nothing about the person.
_QUEUE_SKIP = ("worker", "lease_expires_at")

NOTHING_HELD = "the bridge holds nothing about this person"
ONLY_ERASURES = NOTHING_HELD + " but the record that it erased them (erasures)"


async def _rows(s: AsyncSession, person: records.Person, table: type[Base]) -> list[Any]:
    query = select(table).where(records.where(person, table)).order_by(table.id)  # type: ignore[attr-defined]
    return list((await s.scalars(query)).all())


async def export_person(
    sessions: async_sessionmaker[AsyncSession], telegram_user_id: int
) -> dict[str, Any]:
    """The person's customer row, sessions with surveys, messages of both directions with
    their payloads, Telegram updates, media metadata, tickets, buttons, kept Udesk bodies
    that name them and erasure requests.  ``customer`` is None when the bridge does not
    know them (the lists may still hold records found by chat or token).

    ``held`` is False when none of that exists beyond completed erasures (which keep no
    more than the user id, steps and times); ``customer_token`` is then None, since the
    token is derived from the user id and printing it would look like something kept."""
    async with sessions() as s:
        person, customer = await records.find_person(s, telegram_user_id)
        im_sessions = await _rows(s, person, ImSession)
        surveys = await _rows(s, person, Survey)
        outbound = await _rows(s, person, OutboundMessage)
        inbound = await _rows(s, person, InboundMessage)
        updates = await _rows(s, person, TelegramUpdate)
        media = await _rows(s, person, Media)
        tickets = await _rows(s, person, Ticket)
        buttons = await _rows(s, person, ButtonAction)
        push_ids = await records.rejected_push_ids(s, person)
        pushes = (
            list(
                (
                    await s.scalars(
                        select(RejectedPush)
                        .where(RejectedPush.id.in_(push_ids))
                        .order_by(RejectedPush.id)
                    )
                ).all()
            )
            if push_ids
            else []
        )
        erasures = list(
            (
                await s.scalars(
                    select(Erasure)
                    .where(Erasure.telegram_user_id == telegram_user_id)
                    .order_by(Erasure.id)
                )
            ).all()
        )
    by_session: dict[int, list[dict[str, Any]]] = {}
    for survey in surveys:
        by_session.setdefault(survey.session_id, []).append(records.row_json(survey))
    kept = [customer, *im_sessions, *outbound, *inbound, *updates, *media, *tickets, *buttons]
    # A pending erasure still holds the token and Udesk ids its remaining steps need.
    held = any(row is not None for row in kept) or bool(pushes)
    held = held or any(e.completed_at is None for e in erasures)
    return {
        "telegram_user_id": telegram_user_id,
        "exported_at": records.iso(utcnow()),
        "held": held,
        "note": None if held else (ONLY_ERASURES if erasures else NOTHING_HELD),
        "customer_token": person.customer_token if held else None,
        "customer": records.row_json(customer) if customer is not None else None,
        "sessions": [
            records.row_json(row) | {"surveys": by_session.get(row.id, [])} for row in im_sessions
        ],
        "messages": {
            "to_udesk": [records.row_json(r, skip=_QUEUE_SKIP) for r in outbound],
            "to_telegram": [records.row_json(r, skip=_QUEUE_SKIP) for r in inbound],
        },
        "telegram_updates": [records.row_json(r, skip=_QUEUE_SKIP) for r in updates],
        # The files themselves stay on disk; their links are not handed out.
        "media": [records.row_json(m, skip=("token", "path")) for m in media],
        "tickets": [records.row_json(t) for t in tickets],
        "button_actions": [records.row_json(b) for b in buttons],
        "rejected_udesk_bodies": [records.row_json(p) for p in pushes],
        "erasures": [records.row_json(e) for e in erasures],
    }
