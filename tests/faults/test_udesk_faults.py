"""Udesk misbehaving while customers write and agents reply: 5xx bursts, answers later than
the client waits, quota refusals, 9200 for a live session, the push URL unreachable, a
proxy's error page, a refused timestamp.  Every case ends with everything exactly once, in
order, on both sides; only an answer that proves a message can never be taken
dead-letters it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bridge.store.db import create_engine
from bridge.store.tables import OutboundMessage, RecordStatus
from tests.faults.rigs import Rig, open_rig
from tests.faults.traffic import Traffic, eventually

UNDELIVERED = "could not be delivered"  # the customer's "delivery_failed" text


def _faulted(rig: Rig, path: str, kind: str) -> int:
    return sum(1 for c in rig.udesk.calls_to(path) if c.fault == kind)


async def _dead_letters(database_url: str) -> list[OutboundMessage]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(OutboundMessage).where(OutboundMessage.status == RecordStatus.FAILED.value)
            )
            return list(rows)  # type: ignore[arg-type]
    finally:
        await engine.dispose()


async def test_http_500_burst_on_messages(database_url: str, tmp_path: Path) -> None:
    # On both backends (the only case run on SQLite too: the queue code differs there).
    async with open_rig(database_url, tmp_path / "media") as rig:
        traffic = Traffic(rig.udesk, rig.telegram, 3, 7100)
        await traffic.connect()
        rig.udesk.inject_fault("/im/messages", "http_500", count=8, method="POST")
        await traffic.burst(writes=3, replies=3)
        await traffic.check()
        assert _faulted(rig, "/im/messages", "http_500") == 8


async def test_http_500_for_a_while_on_sessions_and_messages(rig: Rig) -> None:
    traffic = Traffic(rig.udesk, rig.telegram, 4, 7200)
    first, late = traffic.customers[:2], traffic.customers[2:]
    await traffic.connect(first)
    # For 2.5 s every session request and every message fails: the first customers keep
    # talking, the late ones arrive and need a session.
    rig.udesk.inject_fault("/im/sessions", "http_500", duration=2.5)
    rig.udesk.inject_fault("/im/messages", "http_500", duration=2.5, method="POST")
    for c in late:
        traffic.write(c)
    await traffic.burst(writes=2, replies=2, customers=first)
    await traffic.wait_connected(late, timeout=30)
    await traffic.burst(writes=2, replies=2)
    await traffic.check()
    assert _faulted(rig, "/im/sessions", "http_500") >= 1
    assert _faulted(rig, "/im/messages", "http_500") >= 1


async def test_answers_later_than_the_client_waits(rig: Rig) -> None:
    assert rig.settings.udesk_timeout == 1
    traffic = Traffic(rig.udesk, rig.telegram, 3, 7300)
    await traffic.connect(traffic.customers[:2])
    # Udesk does the work, then answers after 1.5 s: the client (UDESK_TIMEOUT=1s) has given
    # up and sends again; the same message_id keeps the agent from seeing it twice, and a
    # repeated session request finds the session the first one opened.
    rig.udesk.inject_fault("/im/messages", "timeout", count=4, delay=1.5, method="POST")
    rig.udesk.inject_fault("/im/sessions", "timeout", count=1, delay=1.5)
    traffic.write(traffic.customers[2])
    await traffic.burst(writes=2, replies=2, customers=traffic.customers[:2])
    await traffic.wait_connected(timeout=30)
    await traffic.burst(writes=1, replies=2)
    await traffic.check(timeout=40)
    assert _faulted(rig, "/im/messages", "timeout") == 4
    assert _faulted(rig, "/im/sessions", "timeout") == 1
    assert rig.udesk.duplicate_messages, "the timed-out sends were never repeated"
    for c in traffic.customers:
        assert sum(1 for s in rig.udesk.sessions.values() if s.customer_token == c.token) == 1


async def test_quota_exceeded(rig: Rig) -> None:
    traffic = Traffic(rig.udesk, rig.telegram, 3, 7400)
    await traffic.connect(traffic.customers[:2])
    rig.udesk.inject_fault("/", "quota", count=10)
    traffic.write(traffic.customers[2])
    await traffic.burst(writes=3, replies=2, customers=traffic.customers[:2])
    await traffic.wait_connected(timeout=30)
    await traffic.burst(writes=1, replies=1)
    await traffic.check()
    assert sum(1 for c in rig.udesk.calls if c.fault == "quota") == 10


async def test_session_gone_for_a_live_session(rig: Rig) -> None:
    traffic = Traffic(rig.udesk, rig.telegram, 3, 7500)
    await traffic.connect()
    sessions_before = {c.token: rig.udesk.session_of(c.token).id for c in traffic.customers}
    # Udesk answers 9200 although the session is open: the bridge asks for a session again
    # (gets the same one) and sends again.
    rig.udesk.inject_fault("/im/messages", "session_gone", count=4, method="POST")
    await traffic.burst(writes=3, replies=2)
    await traffic.check()
    assert _faulted(rig, "/im/messages", "session_gone") == 4
    for c in traffic.customers:
        assert rig.udesk.session_of(c.token).id == sessions_before[c.token]
        assert not any("could not be delivered" in t for t in traffic.chat_texts(c))


async def test_push_url_unreachable_then_caught_up(rig: Rig) -> None:
    replies_while_down = 2
    traffic = Traffic(rig.udesk, rig.telegram, 3, 7600)
    await traffic.connect()
    await traffic.burst(writes=1, replies=1)
    await traffic.wait_arrived()
    rig.udesk.push_enabled = False  # the bridge's push URL cannot be reached
    await traffic.burst(writes=2, replies=replies_while_down)
    failed = [p for p in rig.udesk.push_log if p.error == "push disabled"]
    assert len(failed) == 3 * replies_while_down
    # Customers' messages still flow; the replies are only in Udesk for now.
    await eventually(
        lambda: all(len(traffic.in_udesk(c)) == len(c.wrote) for c in traffic.customers),
        what="customer messages during the push outage",
    )
    rig.udesk.push_enabled = True
    assert rig.bridge.parts is not None
    await rig.bridge.parts.watchers.catch_up()
    await traffic.wait_arrived()
    await rig.bridge.parts.watchers.catch_up()  # a second catch-up finds nothing new
    await traffic.burst(writes=1, replies=2)
    await traffic.check()


@pytest.mark.parametrize(
    ("kind", "base"), [("http_403", 7700), ("http_408", 7710), ("clock_skew", 7720)]
)
async def test_passing_refusals_are_retried_not_dead_lettered(
    rig: Rig, kind: str, base: int
) -> None:
    # For 3 s every message meets a proxy's HTML error page (403 Forbidden, 408 Request
    # Timeout) or Udesk's "timestamp expired" (a clock off by minutes), then Udesk answers
    # again: the messages wait and arrive, once each; nobody is told they were lost.
    traffic = Traffic(rig.udesk, rig.telegram, 2, base)
    await traffic.connect()
    rig.udesk.inject_fault("/im/messages", kind, duration=3, method="POST")
    await traffic.burst(writes=2, replies=1)
    await traffic.check(timeout=40)
    assert _faulted(rig, "/im/messages", kind) >= 1
    assert await _dead_letters(rig.database_url) == []
    for c in traffic.customers:
        assert not any(UNDELIVERED in t for t in traffic.chat_texts(c))


async def test_a_permanent_refusal_still_dead_letters(rig: Rig) -> None:
    traffic = Traffic(rig.udesk, rig.telegram, 1, 7730)
    await traffic.connect()
    await traffic.wait_arrived()
    c = traffic.customers[0]
    # 2062 "Missing parameters": Udesk refuses the message itself, and would again.
    rig.udesk.inject_fault("/im/messages", "code_2062", count=1, method="POST")
    rig.telegram.inject_text(c.user, "refused for good")
    await eventually(
        lambda: any(UNDELIVERED in t for t in traffic.chat_texts(c)),
        what="the customer told the message was not delivered",
    )
    (dead,) = await _dead_letters(rig.database_url)
    assert dead.attempts == 1 and "2062" in (dead.last_error or "")
    assert _faulted(rig, "/im/messages", "code_2062") == 1  # not tried again
    # The customer's line moves on.
    await traffic.burst(writes=2, replies=1)
    await traffic.check()
