"""``POST /udesk/field-push/{secret}``: Udesk's field push (field-push.txt).

Udesk posts a customer's fields when an agent changes them, and (if so configured) when a
new IM session pops up in the workspace::

    {"customer": {"nick_name": "…", "cellphone": [{"content": "159…"}], "email": "…",
                  "other_emails": […], "description": "…", "tags": "a,b", "level": "vip",
                  "organization": "…", "lang": "…", "TextField_1": "…",
                  "SelectField_2": […]},
     "im_sub_session_id": 123,          # IM session popup / editing in the IM workspace
     "web_token": "…", "sdk_token": "…", "phoneNumber": "…"}   # other channels, calls

The customer is found by, in order: a token (``open_api_token``, ``customer_token``,
``web_token`` or ``sdk_token`` at the top, inside ``customer``, or as ``customer.…`` keys,
also inside ``ticket``) equal to a bridge customer's ``customer_token``; the
``im_sub_session_id`` of one of our sessions; the call's ``phoneNumber``.  Its ``level``,
``tags``, ``email`` and phone (normalised) go to those columns (routing reads level and
tags); everything else goes to ``profile["udesk"]``.

Always 200 ``{"code": 1000, "error": ""}`` for a JSON object (an unknown customer is logged);
wrong secret 404; not a JSON object 400 (body kept in ``rejected_pushes``); database down
503.  For a push that carries ``im_sub_session_id`` (the IM popup) of a bridge customer not
linked to a company's own Udesk customer, the answer also has ``customer`` with what the
bridge knows and the push left blank, in the doc's answer shape: ``nick_name`` (Telegram
first and last name and @username), ``lang`` (Telegram language) and
``cellphones_attributes`` (the phone the user shared).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bridge.core import deeplinks, phones
from bridge.http_errors import error_response
from bridge.store import customers
from bridge.store import sessions as session_repo
from bridge.store.db import DATABASE_DOWN
from bridge.store.tables import Customer, utcnow
from bridge.udesk.customer_token_route import token_for_number
from bridge.udesk.push_route import reject, secret_matches
from bridge.untrusted import BadJson, load_json

log = logging.getLogger("bridge.udesk.field_push")

ENDPOINT = "field-push"
OK = {"code": 1000, "error": ""}
TOKEN_KEYS = ("open_api_token", "customer_token", "web_token", "sdk_token")
PHONE_KEYS = ("cellphone", "cellphones", "cellphones_attributes")
PROFILE_KEYS = (
    "nick_name",
    "other_emails",
    "description",
    "organization",
    "organization_id",
    "lang",
    "owner_id",
    "owner_group_id",
)
CUSTOMER_KEYS = {"level", "tags", "email", *PHONE_KEYS, *PROFILE_KEYS}
CUSTOM_FIELD = re.compile(r"^[A-Za-z]+Field_\w+$")


class BadPush(ValueError):
    pass


def parse(body: bytes) -> dict[str, Any]:
    try:
        data = load_json(body)
    except BadJson as exc:  # also nested too deeply, as on the push route
        raise BadPush(str(exc)) from None
    if not isinstance(data, dict):
        raise BadPush("expected a JSON object")
    return data


def customer_fields(push: dict[str, Any]) -> dict[str, Any]:
    """The pushed customer fields: the ``customer`` object, or (no such object, not a
    ticket push) the customer fields found at the top."""
    inner = push.get("customer")
    if isinstance(inner, dict):
        return inner
    if "ticket" in push:
        return {}
    return {k: v for k, v in push.items() if k in CUSTOMER_KEYS or CUSTOM_FIELD.match(k)}


def tokens_in(push: dict[str, Any]) -> list[str]:
    found: list[str] = []
    places: list[dict[str, Any]] = [push]
    for key in ("customer", "ticket"):
        if isinstance(push.get(key), dict):
            places.append(push[key])
    ticket = push.get("ticket")
    if isinstance(ticket, dict) and isinstance(ticket.get("customer"), dict):
        places.append(ticket["customer"])
    for place in places:
        for key in TOKEN_KEYS:
            for name in (key, f"customer.{key}"):
                value = place.get(name)
                if isinstance(value, str | int) and not isinstance(value, bool):
                    text = str(value).strip()
                    # Longer than the column or with NUL: no customer of ours has it.
                    if text and len(text) <= 64 and "\x00" not in text and text not in found:
                        found.append(text)
    return found


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        return None
    return number if 0 < number < 2**63 else None


async def find_customer(
    session: AsyncSession, push: dict[str, Any], region: str
) -> tuple[Customer | None, str]:
    """The bridge customer the push is about, and how it was found (for the log)."""
    for token in tokens_in(push):
        customer = await customers.get_by_token(session, token)
        if customer is not None:
            return customer, "token"
    sub_session = _positive_int(push.get("im_sub_session_id"))
    if sub_session is not None:
        row = await session_repo.by_sub_session(session, sub_session)
        if row is not None:
            return await session.get(Customer, row.customer_id), "im_sub_session_id"
    number = push.get("phoneNumber")
    if isinstance(number, str | int) and not isinstance(number, bool) and str(number).strip():
        by_phone = await token_for_number(session, str(number), region)
        if by_phone is not None:
            return await customers.get_by_token(session, by_phone), "phoneNumber"
    return None, "nothing matched"


def _phone_list(value: Any, region: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    found: list[str] = []
    for item in items:
        raw = item.get("content") if isinstance(item, dict) else item
        if raw is None or isinstance(raw, bool | dict | list):
            continue
        phone = phones.normalise(raw, region)
        if phone and phone not in found:
            found.append(phone)
    return found


def _text(value: Any, limit: int) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).replace("\x00", "").strip()
    return text[:limit] or None


def _tags(value: Any) -> str | None:
    parts = value if isinstance(value, list) else str(value or "").split(",")
    tags = [str(t).replace("\x00", "").strip() for t in parts]
    tags = [t for t in tags if t]
    return ",".join(tags) or None


def apply_fields(customer: Customer, fields: dict[str, Any], region: str) -> list[str]:
    """Write the pushed fields into the bridge's copy; returns the names taken."""
    taken: list[str] = []
    profile = dict(customer.profile or {})
    udesk = dict(profile.get("udesk") or {})
    custom = dict(udesk.get("custom_fields") or {})
    for name, value in fields.items():
        if name == "level":
            customer.level = _text(value, 50)
        elif name == "tags":
            customer.tags = _tags(value)
        elif name == "email":
            customer.email = _text(value, 200)
        elif name in PHONE_KEYS:
            numbers = _phone_list(value, region)
            udesk["cellphones"] = numbers
            if customer.phone not in numbers:
                customer.phone = numbers[0] if numbers else None
        elif name in PROFILE_KEYS:
            udesk[name] = value
        elif CUSTOM_FIELD.match(name):
            custom[name] = value
        else:
            continue
        taken.append(name)
    if not taken:
        return taken
    if custom:
        udesk["custom_fields"] = custom
    udesk["updated_at"] = utcnow().isoformat()
    profile["udesk"] = udesk
    customer.profile = profile
    return taken


def telegram_nick(customer: Customer) -> str:
    """The name the bridge gives the customer in Udesk (as ``ToUdesk`` does)."""
    name = " ".join(p for p in (customer.first_name, customer.last_name) if p)
    name = name or f"Telegram {customer.telegram_user_id}"
    return f"{name} (@{customer.username})" if customer.username else name


def popup_answer(customer: Customer, fields: dict[str, Any]) -> dict[str, Any]:
    """What the bridge knows and the push left blank, in the answer's ``customer`` shape."""
    if deeplinks.is_linked(customer):
        return {}  # the company's own customer: its profile is theirs
    known: dict[str, Any] = {}
    if not _text(fields.get("nick_name"), 255):
        known["nick_name"] = telegram_nick(customer)[:255]
    if not _text(fields.get("lang"), 20) and customer.language_code:
        known["lang"] = customer.language_code
    pushed_phones = [fields.get(k) for k in PHONE_KEYS if fields.get(k)]
    if not pushed_phones and customer.phone:
        known["cellphones_attributes"] = [customer.phone]
    return known


def field_push_handler(
    sessions: async_sessionmaker[AsyncSession], secret: str, region: str
) -> Callable[[web.Request], Any]:
    async def handle(request: web.Request) -> web.Response:
        if not secret_matches(request, secret):
            return error_response(404, "not_found")
        body = await request.read()
        try:
            push = parse(body)
        except BadPush as exc:
            log.warning("rejected a field push: %s", exc)
            await reject(sessions, ENDPOINT, str(exc), body)
            return error_response(400, "bad_push", str(exc))
        fields = customer_fields(push)
        answer: dict[str, Any] = dict(OK)
        try:
            async with sessions.begin() as session:
                customer, how = await find_customer(session, push, region)
                if customer is None:
                    log.info(
                        "field push for a customer the bridge does not know (%s; keys: %s)",
                        how,
                        ", ".join(sorted(push)[:20]),
                    )
                    return web.json_response(answer)
                taken = apply_fields(customer, fields, region)
                log.info(
                    "field push for customer %s (found by %s): %s",
                    customer.id,
                    how,
                    ", ".join(taken) or "no customer fields",
                )
                if _positive_int(push.get("im_sub_session_id")) is not None:
                    known = popup_answer(customer, fields)
                    if known:
                        answer["customer"] = known
        except DATABASE_DOWN as exc:
            # The type only: a driver error can quote names and phone numbers (parameters).
            log.error("database unavailable (%s): field push answered 503", type(exc).__name__)
            return error_response(503, "unavailable", "not stored; try again")
        return web.json_response(answer)

    return handle
