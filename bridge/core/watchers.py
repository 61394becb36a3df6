"""Periodic jobs: queue positions and catch-up of agent replies a down bridge missed.

Both spend Udesk's low-priority budget and run on one replica at a time (``leader``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bridge.core import agent_side, intake
from bridge.core.errors import BridgeError
from bridge.core.model import OutgoingItem
from bridge.core.ports import UdeskGateway
from bridge.core.texts import Texts
from bridge.store import sessions as session_repo
from bridge.store.notify import Waker
from bridge.store.tables import Customer, ImSession, SessionState

log = logging.getLogger("bridge.core.watchers")


class Watchers:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        udesk: UdeskGateway,
        texts: Callable[[], Texts],
        waker: Waker,
        leader: Callable[[], Awaitable[bool]],
        *,
        queue_interval: float,
        catch_up_interval: float = 300.0,
    ) -> None:
        self.sessions = sessions
        self.udesk = udesk
        self.texts = texts
        self.waker = waker
        self.leader = leader
        self.queue_interval = queue_interval
        self.catch_up_interval = catch_up_interval

    async def run_queue_polls(self) -> None:
        while True:
            await asyncio.sleep(self.queue_interval)
            if await self.leader():
                await self.poll_queues()

    async def run_catch_up(self) -> None:
        while True:
            if await self.leader():
                await self.catch_up()
            await asyncio.sleep(self.catch_up_interval)

    async def poll_queues(self) -> None:
        async with self.sessions() as s:
            rows = [(r.id, r.customer_id) for r in await session_repo.queued(s)]
        for session_id, customer_id in rows:
            async with self.sessions() as s:
                customer = await s.get(Customer, customer_id)
            if customer is None:
                continue
            try:
                status, position = await self.udesk.queue_position(customer.customer_token)
            except BridgeError as exc:
                log.debug("queue status for %s unavailable: %s", customer.id, exc)
                continue
            if status.lower() != "in queue" or position <= 0:
                continue
            await self._update_position(session_id, customer, position)

    async def _update_position(self, session_id: int, customer: Customer, position: int) -> None:
        async with self.sessions.begin() as s:
            row = await s.get(ImSession, session_id)
            if row is None or row.state != SessionState.QUEUED.value:
                return
            if row.queue_position == position:
                return
            row.queue_position = position
            text = self.texts().get("queued", customer.language_code, position=position)
            await intake.to_chat(
                s,
                customer,
                OutgoingItem(kind="queue_position", html=text, plain=True),
                dedup_key=f"queue:{session_id}:{position}:{int(time.time())}",
                extra={"session_id": session_id},
            )
        self.waker.wake(intake.INBOUND)

    async def catch_up(self) -> int:
        """Ask Udesk for agent messages of open sessions we never got; deliver the new ones."""
        async with self.sessions() as s:
            rows = [
                (r.im_sub_session_id, r.customer_id)
                for r in await session_repo.open_agent_sessions(s)
                if r.im_sub_session_id
            ]
        created = 0
        for sub_session_id, customer_id in rows:
            async with self.sessions() as s:
                customer = await s.get(Customer, customer_id)
            if customer is None or not customer.udesk_customer_id:
                continue
            try:
                messages = await self.udesk.unread_agent_messages(
                    int(sub_session_id), int(customer.udesk_customer_id)
                )
            except BridgeError as exc:
                log.debug("catch-up for session %s unavailable: %s", sub_session_id, exc)
                continue
            if not messages:
                continue
            async with self.sessions.begin() as s:
                created += await agent_side.accept_push(
                    s, self.texts(), customer.customer_token, messages
                )
        if created:
            log.info("catch-up found %d agent messages the bridge had missed", created)
            self.waker.wake(intake.INBOUND)
        return created
