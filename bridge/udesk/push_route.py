"""``POST /udesk/push/{secret}``: Udesk's Receiving Message URL.

Udesk waits at most 5 s and stops calling after 10 timeouts in a minute, so this handler
only parses and writes rows; delivery to Telegram happens later, from the inbound queue.
200 with an empty body once stored; wrong secret 404; not JSON or not a known shape 400
(the body is kept in ``rejected_pushes``); over 1 MiB 413 (the app's body limit); the
database down 503, so nothing is acknowledged that was not stored.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bridge import metrics
from bridge.core import to_telegram
from bridge.core.model import AgentMessage
from bridge.core.texts import Texts
from bridge.http_errors import error_response
from bridge.logs import correlation_id
from bridge.store.db import DATABASE_DOWN, is_bad_data
from bridge.store.group_commit import GroupCommit
from bridge.store.tables import Customer, ImSession, RejectedPush
from bridge.udesk.push_models import PushParseError, ReadStatusPush, parse_push
from bridge.udesk.push_translate import translate
from bridge.untrusted import secret_matches as same_secret

log = logging.getLogger("bridge.udesk.push")


def secret_matches(request: web.Request, secret: str) -> bool:
    return same_secret(request.match_info.get("secret", ""), secret)


async def reject(
    sessions: async_sessionmaker[AsyncSession], endpoint: str, reason: str, body: bytes
) -> None:
    try:
        async with sessions.begin() as session:
            session.add(RejectedPush(endpoint=endpoint, reason=reason[:2000], body=body))
    except DATABASE_DOWN:
        log.error("could not keep a rejected %s body (database down)", endpoint)


async def _token_for_urobot(session: AsyncSession, urobot_session_id: int | None) -> str | None:
    if urobot_session_id is None:
        return None
    return await session.scalar(
        select(Customer.customer_token)
        .join(ImSession, ImSession.customer_id == Customer.id)
        .where(ImSession.urobot_session_id == urobot_session_id)
        .order_by(ImSession.id.desc())
        .limit(1)
    )


def push_correlation_id(message_id: object) -> str:
    """``udesk-<message_id>``, plain ASCII, fit for the 40-character column."""
    return "udesk-" + re.sub(r"[^A-Za-z0-9._:-]", "_", str(message_id))[:34]


def push_handler(
    sessions: async_sessionmaker[AsyncSession],
    texts: Callable[[], Texts],
    secret: str,
) -> Callable[[web.Request], Any]:
    async def unstorable(body: bytes, exc: BaseException) -> web.Response:
        reason = f"values that cannot be stored ({type(exc).__name__})"
        log.warning("rejected a Udesk push: %s", reason)
        await reject(sessions, "push", reason, body)
        return error_response(400, "bad_push", reason)

    # Pushes arriving together are stored together (bridge.store.group_commit), their
    # customers read with one query; a batch of plain messages for known customers, nearly
    # every batch, in autocommit statements, the others in one transaction.
    writes = GroupCommit(sessions, name="pushes")

    async def store_pushes(
        session: AsyncSession, pushes: list[tuple[str, list[AgentMessage], str | None]]
    ) -> list[int]:
        return await to_telegram.accept_pushes(session, texts(), pushes)

    async def handle(request: web.Request) -> web.Response:
        if not secret_matches(request, secret):
            return error_response(404, "not_found")
        body = await request.read()
        try:
            push = parse_push(body)
        except PushParseError as exc:
            log.warning("rejected a Udesk push: %s", exc)
            await reject(sessions, "push", str(exc), body)
            return error_response(400, "bad_push", str(exc))
        if isinstance(push, ReadStatusPush):
            log.debug("agent read %d messages", len(push.message_ids))
            return web.Response(status=200)
        try:
            token, messages = translate(push)
        except (ValueError, TypeError, OverflowError) as exc:
            return await unstorable(body, exc)
        if messages:  # the inbound records it makes carry it (observability)
            correlation_id.set(push_correlation_id(messages[0].message_id))
        try:
            if token is None and messages:
                async with sessions() as session:
                    token = await _token_for_urobot(session, messages[0].urobot_session_id)
            if token is None:
                # Acknowledged (Udesk must not retry it) and kept for inspection.
                await reject(sessions, "push", "urobot push for an unknown session", body)
                return web.Response(status=200)
            await writes.run_together(
                store_pushes,
                (token, messages, correlation_id.get()),
                first=to_telegram.accept_plain_pushes,
            )
        except (OverflowError, UnicodeError, ValueError) as exc:
            return await unstorable(body, exc)
        except DATABASE_DOWN as exc:
            if is_bad_data(exc):
                # It parsed, but a value cannot be stored (a NUL, a lone surrogate, a number
                # beyond 64 bits): a precise 400 and the body kept, never a 5xx.
                return await unstorable(body, exc)
            # The type only: a driver error can quote the push's content (its parameters).
            log.error(
                "database unavailable (%s): push not stored, answering 503", type(exc).__name__
            )
            return error_response(503, "unavailable", "not stored; try again")
        return web.Response(status=200)

    async def timed(request: web.Request) -> web.Response:
        """Counts every push by status and times the acknowledgement (observability)."""
        started = time.monotonic()
        cid = correlation_id.set(None)
        try:
            response = await handle(request)
        except web.HTTPException as exc:  # e.g. 413, body over the limit
            metrics.push_answered(exc.status, time.monotonic() - started)
            raise
        finally:
            correlation_id.reset(cid)
        metrics.push_answered(response.status, time.monotonic() - started)
        return response

    return timed
