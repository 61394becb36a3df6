"""Repository of customers: one per Telegram user, with a stable Udesk ``customer_token``."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.store.db import padded
from bridge.store.tables import Customer


class TelegramProfile(Protocol):
    """What the store keeps of a Telegram user (``bridge.core.model.UserInfo`` is one): the
    store sits below the conversation rules and names only the fields it reads."""

    @property
    def user_id(self) -> int: ...
    @property
    def chat_id(self) -> int: ...
    @property
    def first_name(self) -> str | None: ...
    @property
    def last_name(self) -> str | None: ...
    @property
    def username(self) -> str | None: ...
    @property
    def language_code(self) -> str | None: ...
    @property
    def chat_type(self) -> str: ...


def token_for(user_id: int) -> str:
    """The user's ``customer_token``: derived from the Telegram id, so it is the same after a
    restart, a new session or even a lost database (Udesk would otherwise see a stranger)."""
    return f"tg-{user_id}"


# Built once: these run for every message, and building a statement costs more than
# running one whose compiled form is cached.
_BY_USER = select(Customer).where(Customer.telegram_user_id == bindparam("user_id"))
_BY_TOKEN = select(Customer).where(Customer.customer_token == bindparam("token"))


_BY_USERS = select(Customer).where(
    Customer.telegram_user_id.in_(bindparam("user_ids", expanding=True))
)
_PREFETCHED = "customers_by_user"  # session.info key: customers read ahead for this txn


async def prefetch_by_user(session: AsyncSession, user_ids: set[int]) -> None:
    """Read these users' customers with one query for the rest of the caller's transaction
    (``get_by_user`` answers from them): a batch of updates asked once per update."""
    if not user_ids:
        return
    found = (await session.scalars(_BY_USERS, {"user_ids": padded(sorted(user_ids))})).all()
    session.info.setdefault(_PREFETCHED, {}).update({c.telegram_user_id: c for c in found})


async def get_by_user(session: AsyncSession, user_id: int) -> Customer | None:
    prefetched = session.info.get(_PREFETCHED)
    if prefetched is not None and user_id in prefetched:
        return prefetched[user_id]  # type: ignore[no-any-return]
    return await session.scalar(_BY_USER, {"user_id": user_id})


_BY_TOKENS = select(Customer).where(
    Customer.customer_token.in_(bindparam("tokens", expanding=True))
)


async def get_many_by_token(session: AsyncSession, tokens: set[str]) -> dict[str, Customer]:
    """The customers holding these tokens, by token, in one query (tokens no customer
    holds are absent; ``get_by_token`` knows the older tokens of linked customers)."""
    found = (await session.scalars(_BY_TOKENS, {"tokens": padded(sorted(tokens))})).all()
    return {c.customer_token: c for c in found}


async def get_by_token(session: AsyncSession, token: str) -> Customer | None:
    found = await session.scalar(_BY_TOKEN, {"token": token})
    # --- deep links: a customer linked to a company's Udesk customer still answers to
    # the token they had before (late pushes about earlier sessions) ---
    own = re.fullmatch(r"tg-([1-9][0-9]{0,17})", token)
    if found is None and own is not None:
        found = await get_by_user(session, int(own.group(1)))
    # --- end deep links ---
    return found


async def upsert_from_user(session: AsyncSession, user: TelegramProfile) -> tuple[Customer, bool]:
    """The customer for this user, created or with their Telegram profile refreshed.

    Returns ``(customer, name_changed)``; a change of name or username means Udesk's copy
    should be updated.
    """
    customer = await get_by_user(session, user.user_id)
    if customer is None:
        customer = Customer(
            telegram_user_id=user.user_id,
            chat_id=user.chat_id,
            customer_token=token_for(user.user_id),
            first_name=user.first_name,
            last_name=user.last_name,
            username=user.username,
            language_code=user.language_code,
            chat_type=user.chat_type,
            profile={},
            reachable=True,
        )
        session.add(customer)
        await session.flush()
        return customer, False
    changed = (customer.first_name, customer.last_name, customer.username) != (
        user.first_name,
        user.last_name,
        user.username,
    )
    customer.first_name = user.first_name
    customer.last_name = user.last_name
    customer.username = user.username
    customer.language_code = user.language_code or customer.language_code
    customer.chat_id = user.chat_id
    return customer, changed


def _of_record_customer(column: Any) -> Callable[[Table], ColumnElement[Any]]:
    def build(queue: Table) -> ColumnElement[Any]:
        return select(column).where(Customer.id == queue.c.customer_id).scalar_subquery()

    return build


# What showing an agent's message needs to know of its customer, read by the claim that
# hands the record out (``DurableQueue(looked_up=…)``) instead of by a query per record.
RECIPIENT_LOOKUPS: dict[str, Callable[[Table], ColumnElement[Any]]] = {
    "customer_reachable": _of_record_customer(Customer.reachable),
    "customer_language": _of_record_customer(Customer.language_code),
}
