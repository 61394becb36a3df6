"""Signed deep links: ``t.me/<bot>?start=<payload>`` ties a Telegram user to a customer the
company already has in Udesk (a web or SDK customer), so the agent sees one person.

The payload (Telegram allows at most 64 characters of ``A-Z a-z 0-9 _ -``)::

    body    = base64url("<customer_token>.<expiry unix seconds>")     no "=" padding
    mac     = base64url(HMAC-SHA256(DEEPLINK_SECRET, body)[:10])      always 14 characters
    payload = body + mac

There is no separator (``.`` is not allowed in a start parameter): the last 14 characters
are the signature.  The signature covers ``body`` as sent (its ASCII characters).  With the
10-digit expiry of the coming centuries the token may be up to 26 bytes (UTF-8) long.
Tokens starting with ``tg-`` are the bridge's own and cannot be linked to.

A payload that is not such a link, or whose signature, expiry or token is wrong, or any
payload while ``DEEPLINK_SECRET`` is unset, is a plain routing hint (``start_param``).

Linking (``link_from_start``) records ``profile["linked_token"]``; the customer's
``customer_token`` becomes the linked token as soon as they have no open session and no
record waiting for Udesk (``apply_pending_link``, also called on each later update), so a
conversation in progress ends under the identity it started with and every record is sent
under one token.  One Udesk customer is linked to at most one Telegram user: a link to a
token another Telegram user already has is refused (logged) and changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.store import sessions as session_repo
from bridge.store.tables import IN_FLIGHT, Customer, OutboundMessage, utcnow

log = logging.getLogger("bridge.core.deeplinks")

MAX_PAYLOAD = 64  # Telegram's limit for a start parameter
MAC_BYTES = 10
MAC_CHARS = 14  # len(base64url(10 bytes)) without padding
OWN_PREFIX = "tg-"  # the bridge's own customer tokens (bridge.store.customers.token_for)
_ALLOWED = re.compile(r"^[A-Za-z0-9_-]+$")


class LinkError(ValueError):
    """A link that cannot be made (e.g. a token too long for Telegram's 64 characters)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, body: str) -> str:
    digest = hmac.new(secret.encode(), body.encode("ascii"), hashlib.sha256).digest()
    return _b64(digest[:MAC_BYTES])


def token_problem(token: str) -> str | None:
    """Why ``token`` cannot be linked to, or None."""
    if not token:
        return "the customer token is empty"
    if token.startswith(OWN_PREFIX):
        return f"tokens starting with {OWN_PREFIX!r} are the bridge's own"
    if any(c.isspace() or not c.isprintable() for c in token):
        return "the customer token contains spaces or control characters"
    return None


def sign(token: str, expires_at: int, secret: str) -> str:
    """The start payload for ``token``, valid until ``expires_at`` (unix seconds)."""
    problem = token_problem(token)
    if problem:
        raise LinkError(problem)
    if not secret:
        raise LinkError("DEEPLINK_SECRET is empty")
    body = _b64(f"{token}.{int(expires_at)}".encode())
    payload = body + _mac(secret, body)
    if len(payload) > MAX_PAYLOAD:
        room = (MAX_PAYLOAD - MAC_CHARS) * 6 // 8 - len(f".{int(expires_at)}")
        raise LinkError(
            f"the customer token is {len(token.encode())} bytes; Telegram's 64-character "
            f"start parameter leaves room for {room}"
        )
    return payload


def make(token: str, ttl_seconds: float, secret: str, *, now: float | None = None) -> str:
    now = time.time() if now is None else now
    return sign(token, int(now + ttl_seconds), secret)


def verify(payload: str, secret: str | None, *, now: float | None = None) -> str | None:
    """The customer token a valid, unexpired payload signs; None for anything else."""
    if not secret or not payload or len(payload) > MAX_PAYLOAD:
        return None
    if len(payload) <= MAC_CHARS or not _ALLOWED.match(payload):
        return None
    body, mac = payload[:-MAC_CHARS], payload[-MAC_CHARS:]
    if not hmac.compare_digest(mac.encode(), _mac(secret, body).encode()):
        return None
    try:
        text = _unb64(body).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    token, dot, expiry = text.rpartition(".")
    if not dot or not expiry.isdigit() or token_problem(token):
        return None
    if int(expiry) <= (time.time() if now is None else now):
        return None
    return token


# --- the customer's side ---------------------------------------------------------------


def is_linked(customer: Customer) -> bool:
    """Linked to a company's Udesk customer (now or once the current session ends): the
    bridge then leaves that customer's name in Udesk alone."""
    return bool((customer.profile or {}).get("linked_token"))


async def _holder(session: AsyncSession, customer: Customer, token: str) -> int | None:
    """Another customer of ours that already uses ``token``."""
    return await session.scalar(
        select(Customer.id).where(Customer.customer_token == token, Customer.id != customer.id)
    )


async def link_from_start(
    session: AsyncSession, customer: Customer, payload: str, secret: str | None
) -> bool:
    """Handle a /start payload: True when it is a valid signed link (linked, or refused
    because another Telegram user holds that Udesk customer); False when it is only a
    routing hint.  ``secret``: DEEPLINK_SECRET (None: every payload is a routing hint)."""
    token = verify(payload, secret or None)
    if token is None:
        return False
    if token == customer.customer_token:
        return True
    if await _holder(session, customer, token) is not None:
        log.warning(
            "deep link for customer %s refused: that Udesk customer is linked to another "
            "Telegram user",
            customer.id,
        )
        return True
    profile = dict(customer.profile or {})
    profile["linked_token"] = token
    profile["linked_at"] = utcnow().isoformat()
    customer.profile = profile
    log.info("customer %s linked to an existing Udesk customer by a deep link", customer.id)
    await apply_pending_link(session, customer)
    return True


async def apply_pending_link(session: AsyncSession, customer: Customer) -> None:
    """Switch to the linked token once nothing is in flight under the current one."""
    linked = (customer.profile or {}).get("linked_token")
    if not linked or linked == customer.customer_token:
        return
    if await session_repo.open_for(session, customer.id) is not None:
        return  # the conversation in progress ends under its own identity
    waiting = await session.scalar(
        select(OutboundMessage.id)
        .where(OutboundMessage.customer_id == customer.id, OutboundMessage.status.in_(IN_FLIGHT))
        .limit(1)
    )
    if waiting is not None:
        return  # records already queued go out under the token they were written for
    if await _holder(session, customer, linked) is not None:
        profile = dict(customer.profile or {})
        profile.pop("linked_token", None)
        customer.profile = profile
        log.warning("pending deep link of customer %s dropped: token taken meanwhile", customer.id)
        return
    profile = dict(customer.profile or {})
    profile.setdefault("own_token", customer.customer_token)
    customer.profile = profile
    customer.customer_token = linked
    # The next record "ensures" the customer: POST /customers finds the company's existing
    # customer (an already-existing open_api_token is success) and takes its id.
    customer.udesk_created = False
    customer.udesk_customer_id = None
    customer.udesk_synced_name = None
