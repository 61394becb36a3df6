"""Udesk misbehaving while customers write and agents reply: 5xx bursts, answers later than
the client waits, quota refusals, 9200 for a live session, the push URL unreachable.
Every case ends with everything exactly once, in order, on both sides."""

from __future__ import annotations

from pathlib import Path

from tests.faults.rigs import Rig, open_rig
from tests.faults.traffic import Traffic, eventually


def _faulted(rig: Rig, path: str, kind: str) -> int:
    return sum(1 for c in rig.udesk.calls_to(path) if c.fault == kind)


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
