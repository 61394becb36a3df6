"""``POST /udesk/customer-token/{secret}``: Udesk call center's "Customer customer_token
Query API" (callcenter-customer-token.txt).

At the start of a call Udesk sends ``{"timestamp": 1501124998, "number": 18888888888}``
(``number`` an integer or a string in any spelling) and wants, within 500 ms,
``{"customer_token": "…"}``: the token of the Telegram user who shared that number with the
bot, so the call lands on the same Udesk customer as their chats.

200 with the token; 404 ``{"error": "not_found"}`` for a number no Telegram user shared;
wrong secret 404; not JSON or no ``number`` 400 (the body is kept in ``rejected_pushes``);
the database down 503.  One indexed SELECT (``customers.phone``) per call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bridge.core import phones
from bridge.http_errors import error_response
from bridge.store.db import DATABASE_DOWN, read_session_factory
from bridge.store.tables import Customer
from bridge.udesk.push_route import reject, secret_matches
from bridge.untrusted import BadJson, load_json

log = logging.getLogger("bridge.udesk.customer_token")

ENDPOINT = "customer-token"


class BadQuery(ValueError):
    pass


def parse_number(body: bytes) -> str:
    """The ``number`` of a query body, as text; BadQuery when there is none."""
    try:
        data = load_json(body)
    except BadJson as exc:  # also nested too deeply, as on the push route
        raise BadQuery(str(exc)) from None
    if not isinstance(data, dict):
        raise BadQuery("expected a JSON object")
    number = data.get("number")
    if isinstance(number, bool) or not isinstance(number, int | str):
        raise BadQuery("'number' must be a string or an integer")
    if not phones.digits_of(number):
        raise BadQuery("'number' has no digits")
    return str(number)


async def token_for_number(session: AsyncSession, number: str, region: str) -> str | None:
    keys = phones.lookup_keys(number, region)
    rows = (
        await session.execute(
            select(Customer.phone, Customer.customer_token)
            .where(Customer.phone.in_(keys))
            .order_by(Customer.updated_at.desc())
            .limit(10)
        )
    ).all()
    if not rows:
        return None
    # The most likely reading of the number wins; among equals, the latest customer.
    rank = {key: i for i, key in enumerate(keys)}
    best = min(rows, key=lambda row: rank.get(row[0], len(keys)))
    return str(best[1])


def customer_token_handler(
    sessions: async_sessionmaker[AsyncSession], secret: str, region: str
) -> Callable[[web.Request], Any]:
    # One statement needs no transaction: autocommit reads on PostgreSQL (store.db).
    reads = read_session_factory(sessions.kw["bind"])

    async def lookup(number: str) -> str | None:
        async with reads() as session:
            return await token_for_number(session, number, region)

    async def handle(request: web.Request) -> web.Response:
        if not secret_matches(request, secret):
            return error_response(404, "not_found")
        body = await request.read()
        try:
            number = parse_number(body)
        except BadQuery as exc:
            log.warning("rejected a customer-token query: %s", exc)
            await reject(sessions, ENDPOINT, str(exc), body)
            return error_response(400, "bad_request", str(exc))
        try:
            token = await lookup(number)
        except DATABASE_DOWN as exc:
            # The type only: a driver error can quote the phone number (a parameter).
            log.error(
                "database unavailable (%s): customer-token query answered 503",
                type(exc).__name__,
            )
            return error_response(503, "unavailable", "try again")
        if token is None:
            log.info("call center asked about an unknown number %s", phones.mask(number))
            return error_response(404, "not_found", "no Telegram customer shared this number")
        return web.json_response({"customer_token": token})

    return handle
