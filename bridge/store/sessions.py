"""Repository of Udesk IM sessions; at most one open per customer (a unique index)."""

from __future__ import annotations

from sqlalchemy import and_, bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bridge.store.db import padded
from bridge.store.tables import OPEN_STATES, Customer, ImSession, SessionState, Survey, utcnow

# Built once: asked for every message.
_OPEN_FOR = select(ImSession).where(
    ImSession.customer_id == bindparam("customer_id"), ImSession.state.in_(OPEN_STATES)
)


async def open_for(session: AsyncSession, customer_id: int) -> ImSession | None:
    return await session.scalar(_OPEN_FOR, {"customer_id": customer_id})


async def by_sub_session(session: AsyncSession, im_sub_session_id: int) -> ImSession | None:
    return await session.scalar(
        select(ImSession)
        .where(ImSession.im_sub_session_id == im_sub_session_id)
        .order_by(ImSession.id.desc())
        .limit(1)
    )


def close(im_session: ImSession) -> None:
    im_session.state = SessionState.CLOSED.value
    im_session.closed_at = utcnow()


async def queued(session: AsyncSession) -> list[ImSession]:
    return list(
        (
            await session.scalars(
                select(ImSession).where(ImSession.state == SessionState.QUEUED.value)
            )
        ).all()
    )


async def open_agent_sessions(session: AsyncSession) -> list[ImSession]:
    return list(
        (
            await session.scalars(
                select(ImSession).where(ImSession.state == SessionState.AGENT.value)
            )
        ).all()
    )


# --- what sending a customer's message needs, in one round trip -------------------------

_SURVEYED = aliased(ImSession)


_FOR_SEND = (
    select(
        Customer,
        ImSession,
        exists()
        .where(
            Survey.session_id == _SURVEYED.id,
            _SURVEYED.customer_id == Customer.id,
            Survey.awaiting_remark.is_(True),
            Survey.answered_at.is_(None),
        )
        .label("remark_awaited"),
    )
    .outerjoin(
        ImSession,
        and_(ImSession.customer_id == Customer.id, ImSession.state.in_(OPEN_STATES)),
    )
    .where(Customer.id.in_(bindparam("customer_ids", expanding=True)))
)


async def load_many_for_send(
    session: AsyncSession, customer_ids: set[int]
) -> dict[int, tuple[Customer, ImSession | None, bool]]:
    """``load_for_send`` for several customers in one query, by customer id (customers that
    no longer exist are absent)."""
    if not customer_ids:
        return {}
    rows = await session.execute(_FOR_SEND, {"customer_ids": padded(sorted(customer_ids))})
    found: dict[int, tuple[Customer, ImSession | None, bool]] = {}
    for customer, im_session, remark_awaited in rows:
        found.setdefault(customer.id, (customer, im_session, bool(remark_awaited)))
    return found


async def load_for_send(
    session: AsyncSession, customer_id: int
) -> tuple[Customer | None, ImSession | None, bool]:
    """The customer, their open session (if any) and whether a survey waits for their
    written remark: three questions asked for every message, in one query."""
    return (await load_many_for_send(session, {customer_id})).get(customer_id, (None, None, False))
