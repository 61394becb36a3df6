"""Leave a message: when no live session is possible, the customer's messages become one
Udesk ticket (tickets-api.txt), and agents' external replies on it come back to the chat.

A "spell" is the time a customer's ticket is open: their first message creates the ticket,
later ones are added as customer replies.  While Udesk keeps answering 2002 (no agent
online) the bridge does not ask for a session on every message; it tries again after
``retry_live_after`` seconds, so a customer writing when agents come back reaches them live.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import re
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bridge.core import recording
from bridge.core.errors import BridgeError
from bridge.core.model import Button, OutgoingItem, Part
from bridge.core.ports import UdeskGateway
from bridge.core.texts import Texts
from bridge.store.tables import Customer, Ticket, utcnow

log = logging.getLogger("bridge.core.tickets")

OPEN = "open"
CLOSED = "closed"
PROMPTS = {
    "no_agent": "leave_message_no_agent",
    "outside_hours": "leave_message_outside_hours",
    "queue_timeout": "leave_message_queue_timeout",
}
_TAGS = re.compile(r"<[^>]+>")


def subject_of(parts: list[Part], fallback: str) -> str:
    for part in parts:
        if part.udesk_type == "message" and part.content.strip():
            first = html.unescape(_TAGS.sub(" ", part.content.replace("<br>", "\n")))
            line = next((ln.strip() for ln in first.splitlines() if ln.strip()), "")
            if line:
                return line[:80]
    return fallback


def body_of(parts: list[Part]) -> str:
    """The ticket text: the message's words, and a link for each file."""
    lines = []
    for part in parts:
        if part.udesk_type == "message":
            lines.append(part.content)
        else:
            name = html.escape(part.filename or part.udesk_type)
            lines.append(f'<a href="{html.escape(part.content)}">{name}</a>')
    return "<br>".join(lines) or "…"


class TicketDesk:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        udesk: UdeskGateway,
        texts: Callable[[], Texts],
        *,
        retry_live_after: float = 600.0,
    ) -> None:
        self.sessions = sessions
        self.udesk = udesk
        self.texts = texts
        self.retry_live_after = dt.timedelta(seconds=retry_live_after)

    async def _open(self, s: AsyncSession, customer_id: int) -> Ticket | None:
        return await s.scalar(
            select(Ticket)
            .where(Ticket.customer_id == customer_id, Ticket.status == OPEN)
            .order_by(Ticket.id.desc())
            .limit(1)
        )

    async def collecting(self, customer: Customer) -> bool:
        async with self.sessions() as s:
            return await self._open(s, customer.id) is not None

    async def live_help_unlikely(self, customer: Customer) -> bool:
        """Udesk said "no agent online" for this customer a short while ago."""
        async with self.sessions() as s:
            ticket = await self._open(s, customer.id)
        if ticket is None or ticket.no_agent_at is None:
            return False
        seen = ticket.no_agent_at
        seen = seen if seen.tzinfo else seen.replace(tzinfo=dt.UTC)
        return utcnow() - seen < self.retry_live_after

    async def add(self, customer: Customer, parts: list[Part], *, reason: str | None) -> None:
        """Put a message into the customer's ticket, opening the ticket (and telling the
        customer, once) when there is none."""
        ticket_id, udesk_id = await self._ticket_for(customer, reason)
        if udesk_id is None:
            texts = self.texts()
            subject = subject_of(parts, texts.get("ticket_subject", None))
            udesk_id = await self.udesk.create_ticket(
                customer.customer_token, subject, body_of(parts)
            )
            async with self.sessions.begin() as s:
                row = await s.get(Ticket, ticket_id)
                if row is not None:
                    row.udesk_ticket_id = udesk_id
            log.info("opened ticket %s for customer %s", udesk_id, customer.id)
        else:
            await self.udesk.ticket_reply(udesk_id, body_of(parts))
        for part in parts:
            if part.data is not None:
                await self.udesk.attach_to_ticket(
                    udesk_id,
                    part.data,
                    part.filename or "file",
                    part.mime_type or "application/octet-stream",
                )

    async def _ticket_for(self, customer: Customer, reason: str | None) -> tuple[int, int | None]:
        async with self.sessions.begin() as s:
            ticket = await self._open(s, customer.id)
            if ticket is None:
                ticket = Ticket(customer_id=customer.id, status=OPEN)
                s.add(ticket)
                await s.flush()
                await self._prompt(s, customer, ticket.id, reason or "no_agent")
            if reason == "no_agent":
                ticket.no_agent_at = utcnow()
            return ticket.id, ticket.udesk_ticket_id

    async def start(self, customer: Customer, reason: str) -> None:
        """The customer asked for a person (/agent) and there is none: the spell starts
        now, their next message opens the ticket."""
        await self._ticket_for(customer, reason)

    async def _prompt(
        self, s: AsyncSession, customer: Customer, ticket_id: int, reason: str
    ) -> None:
        texts = self.texts()
        lang = customer.language_code
        key = PROMPTS.get(reason, PROMPTS["no_agent"])
        text = texts.get(key, lang)
        dedup = f"ticket:{ticket_id}:prompt"
        row = await s.get(Customer, customer.id)
        asked = bool(row and (row.profile or {}).get("phone_asked"))
        if row is not None and row.phone is None and not asked:
            # Offered once, when it helps: the call center can then recognise them.
            row.profile = {**(row.profile or {}), "phone_asked": True}
            item = OutgoingItem(
                kind="request_contact",
                html=text,
                plain=True,
                buttons=[[Button(texts.get("share_phone", lang))]],
            )
        else:
            item = OutgoingItem(kind="text", html=text, plain=True)
        await recording.to_telegram(s, customer, item, dedup_key=dedup)

    # --- agents' replies -----------------------------------------------------------------

    async def poll(self) -> int:
        """Deliver new external replies on open tickets; stop at resolved or closed."""
        async with self.sessions() as s:
            tickets = list(
                (
                    await s.scalars(
                        select(Ticket).where(
                            Ticket.status == OPEN, Ticket.udesk_ticket_id.is_not(None)
                        )
                    )
                ).all()
            )
        delivered = 0
        for ticket in tickets:
            try:
                delivered += await self._poll_one(ticket)
            except BridgeError as exc:
                log.debug("ticket %s not polled: %s", ticket.udesk_ticket_id, exc)
        return delivered

    async def _poll_one(self, ticket: Ticket) -> int:
        assert ticket.udesk_ticket_id is not None
        replies = await self.udesk.ticket_replies(int(ticket.udesk_ticket_id))
        finished = await self.udesk.ticket_finished(int(ticket.udesk_ticket_id))
        last = ticket.last_reply_id or 0
        fresh = sorted(
            (r for r in replies if r.reply_id > last and not r.from_customer),
            key=lambda r: r.reply_id,
        )
        delivered = 0
        async with self.sessions.begin() as s:
            row = await s.get(Ticket, ticket.id)
            customer = await s.get(Customer, ticket.customer_id)
            if row is None or customer is None:
                return 0
            for reply in fresh:
                if not reply.internal:  # internal notes are for agents only, never shown
                    item = OutgoingItem(kind="text", html=reply.content)
                    key = f"ticket-reply:{ticket.udesk_ticket_id}:{reply.reply_id}"
                    if await recording.to_telegram(s, customer, item, dedup_key=key):
                        delivered += 1
                row.last_reply_id = reply.reply_id
            if finished:
                row.status = CLOSED
        return delivered
