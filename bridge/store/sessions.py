"""Repository of Udesk IM sessions; at most one open per customer (a unique index)."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.store.tables import OPEN_STATES, ImSession, SessionState, utcnow

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
