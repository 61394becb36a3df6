"""Periodic jobs: queue positions and catch-up of agent replies a down bridge missed.

Both spend Udesk's low-priority budget and run on one replica at a time (``leader``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bridge.core import recording, to_telegram
from bridge.core.errors import BridgeError
from bridge.core.model import OutgoingItem
from bridge.core.ports import UdeskGateway
from bridge.core.texts import Texts
from bridge.core.tickets import TicketDesk
from bridge.store import sessions as session_repo
from bridge.store.tables import Customer, ImSession, SessionState, utcnow

log = logging.getLogger("bridge.core.watchers")


class Watchers:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        udesk: UdeskGateway,
        texts: Callable[[], Texts],
        leader: Callable[[], Awaitable[bool]],
        *,
        queue_interval: float,
        catch_up_interval: float = 300.0,
        ticket_interval: float = 60.0,
        tickets: TicketDesk | None = None,
        queue_max_wait: Callable[[], float | None] = lambda: None,
    ) -> None:
        self.sessions = sessions
        self.udesk = udesk
        self.texts = texts
        self.leader = leader
        self.queue_interval = queue_interval
        self.catch_up_interval = catch_up_interval
        self.ticket_interval = ticket_interval
        self.tickets = tickets
        self.queue_max_wait = queue_max_wait
        self._catch_up_now = asyncio.Event()

    async def run_queue_polls(self) -> None:
        while True:
            await asyncio.sleep(self.queue_interval)
            if await self.leader():
                await self.poll_queues()

    async def run_ticket_polls(self) -> None:
        while True:
            await asyncio.sleep(self.ticket_interval)
            if self.tickets is not None and await self.leader():
                await self.tickets.poll()

    def nudge_catch_up(self) -> None:
        """Catch up now rather than at the next interval (after a database outage, pushes
        Udesk sent meanwhile were refused and are only found by asking)."""
        self._catch_up_now.set()

    async def run_catch_up(self) -> None:
        while True:
            if await self.leader():
                await self.catch_up()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._catch_up_now.wait(), self.catch_up_interval)
            self._catch_up_now.clear()

    async def poll_queues(self) -> None:
        async with self.sessions() as s:
            queued = await session_repo.queued(s)
            rows = [(r.id, r.customer_id) for r in queued]
        limit = self.queue_max_wait()
        if limit is not None:
            await self._time_out(queued, limit)
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

    async def _time_out(self, queued: list[ImSession], limit: float) -> None:
        """Customers queued longer than ``queue.max_wait``: an outbound command, so it keeps
        its place among their messages."""
        now = utcnow()
        for row in queued:
            created = (
                row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=dt.UTC)
            )
            if (now - created).total_seconds() <= limit:
                continue
            async with self.sessions.begin() as s:
                customer = await s.get(Customer, row.customer_id)
                if customer is not None:
                    await recording.to_udesk(
                        s,
                        customer,
                        kind="command",
                        dedup_key=f"queue-timeout:{row.id}",
                        payload={"name": "queue_timeout"},
                    )

    async def _update_position(self, session_id: int, customer: Customer, position: int) -> None:
        async with self.sessions.begin() as s:
            row = await s.get(ImSession, session_id)
            if row is None or row.state != SessionState.QUEUED.value:
                return
            if row.queue_position == position:
                return
            row.queue_position = position
            text = self.texts().get("queued", customer.language_code, position=position)
            await recording.to_telegram(
                s,
                customer,
                OutgoingItem(kind="queue_position", html=text, plain=True),
                dedup_key=f"queue:{session_id}:{position}:{int(time.time())}",
                extra={"session_id": session_id},
            )

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
                created += await to_telegram.accept_push(
                    s, self.texts(), customer.customer_token, messages
                )
        if created:
            log.info("catch-up found %d agent messages the bridge had missed", created)
            return created
