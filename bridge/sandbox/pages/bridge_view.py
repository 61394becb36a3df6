"""A read-only look into the bridge's database for the agent console.

The console lives in the Udesk simulator, which knows nothing of the bridge; which routing
rule opened a session (``im_sessions.rule_name``) only the bridge knows.  The launcher opens
this view on the bridge's database and hands ``sessions`` to the console.

It uses its own engine rather than the bridge's: the bridge opens every SQLite transaction
with BEGIN IMMEDIATE (a write lock), and a page polling every second must not queue up
behind, or in front of, the bridge's writers.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bridge.store.tables import Customer, ImSession

log = logging.getLogger("bridge.sandbox.pages")


class BridgeView:
    def __init__(self) -> None:
        self._engine: AsyncEngine | None = None

    def open(self, database_url: str) -> None:
        self._engine = create_async_engine(database_url, pool_pre_ping=True)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def sessions(self) -> list[dict[str, Any]]:
        """Every IM session the bridge has recorded, oldest first, with its customer."""
        if self._engine is None:
            return []
        stmt = (
            select(
                Customer.customer_token,
                Customer.telegram_user_id,
                ImSession.id,
                ImSession.assign_type,
                ImSession.state,
                ImSession.rule_name,
                ImSession.agent_name,
                ImSession.im_sub_session_id,
                ImSession.queue_position,
            )
            .join(ImSession, ImSession.customer_id == Customer.id)
            .order_by(ImSession.id)
        )
        try:
            async with self._engine.connect() as conn:
                rows = (await conn.execute(stmt)).mappings().all()
        except SQLAlchemyError as exc:
            # A console refresh is not worth an error page; the next poll tries again.
            log.debug("bridge view unavailable: %s", exc)
            return []
        return [dict(row) for row in rows]
