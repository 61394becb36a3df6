"""A customer's Telegram update becomes durable records, in one transaction.

Nothing here talks to the network: the update's effects are written as outbound records (to
Udesk, in order per customer) and inbound records (what the bot answers, in order per chat),
and the update is marked done in the same transaction, so a crash either keeps all of it or
none of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bridge.core import deeplinks, phones
from bridge.core.model import (
    Button,
    ButtonTap,
    ChatMembership,
    Command,
    CustomerMessage,
    Incoming,
    OutgoingItem,
)
from bridge.core.recording import flush_outbound, say, to_telegram, to_udesk
from bridge.core.texts import Texts
from bridge.store import customers
from bridge.store.tables import ButtonAction, Customer

# Commands with a meaning towards Udesk go through the outbound queue so they keep their
# place among the customer's messages (an /end typed after a photo ends after the photo).
UDESK_COMMANDS = {"agent", "end", "cancel"}


def message_key(chat_id: int, message: CustomerMessage | Command) -> str:
    key = f"tg:{chat_id}:{message.message_id}"
    if isinstance(message, CustomerMessage) and message.edited:
        key += f":e{message.edit_date or 0}"
    return key


@dataclass(frozen=True)
class Identity:
    """What intake needs to know who a customer is: the region of phone numbers written
    without a country code (PHONE_DEFAULT_REGION) and the deep links' DEEPLINK_SECRET."""

    phone_region: str = phones.DEFAULT_REGION
    deeplink_secret: str | None = None


async def accept(
    session: AsyncSession,
    texts: Texts,
    incoming: Incoming,
    *,
    album_debounce: float,
    identity: Identity,
) -> Customer:
    """Record everything one update means; the caller commits."""
    customer, name_changed = await customers.upsert_from_user(session, incoming.user)
    # identity: a deep link waiting for the open session and queued records to finish
    if (customer.profile or {}).get("linked_token"):
        await flush_outbound(session)  # it asks whether records wait: they must be in
    await deeplinks.apply_pending_link(session, customer)
    event = incoming.event
    uid = incoming.update_id

    if isinstance(event, ChatMembership):
        customer.reachable = not event.blocked
        await to_udesk(
            session,
            customer,
            kind="online",
            dedup_key=f"online:{uid}",
            payload={"online": not event.blocked},
        )
        return customer

    if not customer.reachable:
        # They blocked the bot earlier and are writing again: reachable, and Udesk is told.
        customer.reachable = True
        await to_udesk(
            session, customer, kind="online", dedup_key=f"online:{uid}", payload={"online": True}
        )
    # identity: a linked customer's name in Udesk is the company's, not Telegram's
    if name_changed and not deeplinks.is_linked(customer):
        await to_udesk(session, customer, kind="profile", dedup_key=f"profile:{uid}", payload={})

    chat = incoming.user.chat_id
    if isinstance(event, Command):
        await _command(session, texts, customer, chat, event, identity.deeplink_secret)
    elif isinstance(event, CustomerMessage):
        if event.contact_is_self and event.contact_phone:
            # identity: stored as E.164 so the call center's lookup finds it
            phone = phones.normalise(event.contact_phone, identity.phone_region, international=True)
            customer.phone = phone or customer.phone
        delay = album_debounce if event.media_group_id else 0.0
        await to_udesk(
            session,
            customer,
            kind="message",
            dedup_key=message_key(chat, event),
            payload=event.to_dict(),
            delay=delay,
        )
    else:
        assert isinstance(event, ButtonTap)
        kind = "button"
        payload: dict[str, Any] = {
            "action_id": event.action_id,
            "callback_query_id": event.callback_query_id,
        }
        # privacy: the /forget confirmation erases the person, in order with their records
        if await _confirms_forget(session, customer, event.action_id):
            kind = FORGET_KIND
            payload |= {
                "telegram_user_id": customer.telegram_user_id,
                "chat_id": chat,
                "language": customer.language_code,
            }
        await to_udesk(
            session,
            customer,
            kind=kind,
            dedup_key=f"cb:{event.callback_query_id}",
            payload=payload,
        )
    return customer


async def _command(
    session: AsyncSession,
    texts: Texts,
    customer: Customer,
    chat: int,
    command: Command,
    deeplink_secret: str | None,
) -> None:
    key = message_key(chat, command)
    if command.name == "start":
        # identity: a signed deep link links the customer; anything else is a routing hint
        linked = command.args and await deeplinks.link_from_start(
            session, customer, command.args, deeplink_secret
        )
        if command.args and not linked:
            customer.start_param = command.args[:200]
        await say(session, texts, customer, "greeting", dedup_key=f"bot:{key}")
    elif command.name in UDESK_COMMANDS:
        await to_udesk(
            session, customer, kind="command", dedup_key=key, payload={"name": command.name}
        )
    elif command.name == "forget":  # only with FORGET_COMMAND (bridge.telegram.translate)
        await _offer_forget(session, texts, customer, key)
    else:
        await say(session, texts, customer, "help", dedup_key=f"bot:{key}")


FORGET_KIND = "erase"  # the outbound record a confirmed /forget becomes


async def _offer_forget(session: AsyncSession, texts: Texts, customer: Customer, key: str) -> None:
    """A confirmation with one button; tapping it queues the erasure."""
    action = ButtonAction(customer_id=customer.id, action={"t": "forget"})
    session.add(action)
    await session.flush()
    lang = customer.language_code
    item = OutgoingItem(
        kind="text",
        html=texts.get("forget_confirm", lang),
        plain=True,
        buttons=[[Button(texts.get("forget_button", lang), {"id": action.id})]],
    )
    await to_telegram(session, customer, item, dedup_key=f"bot:{key}")


async def _confirms_forget(
    session: AsyncSession, customer: Customer, action_id: int | None
) -> bool:
    if action_id is None:
        return False
    row = await session.get(ButtonAction, action_id)
    return row is not None and row.customer_id == customer.id and row.action.get("t") == "forget"
