"""Telegram misbehaving while customers write and agents reply: flood control, 5xx, a user
who blocked the bot, connections dropped during getUpdates and during sends, a download
cut halfway, the poller dying, an update the database refuses.  Every case ends with
everything exactly once, in order, on both sides."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bridge.store.db import create_engine
from bridge.store.tables import InboundMessage, TelegramUpdate
from tests.faults.rigs import Rig, Sims, open_rig
from tests.faults.traffic import Traffic, eventually


def _fired(rig: Rig, kind: str) -> int:
    return int(rig.telegram.stats[f"fault.{kind}"])


async def test_flood_control_retry_after_on_send(rig: Rig) -> None:
    traffic = Traffic(rig.udesk, rig.telegram, 3, 8100)
    await traffic.connect()
    rig.telegram.inject_fault(method="sendMessage", kind="retry_after", count=4, retry_after=1)
    await traffic.burst(writes=2, replies=3)
    await traffic.check()
    assert _fired(rig, "retry_after") == 4


async def test_5xx_on_send(rig: Rig) -> None:
    traffic = Traffic(rig.udesk, rig.telegram, 3, 8200)
    await traffic.connect()
    rig.telegram.inject_fault(method="sendMessage", kind="http_500", count=3)
    rig.telegram.inject_fault(method="sendMessage", kind="http_502", count=3)
    await traffic.burst(writes=2, replies=3)
    await traffic.check(timeout=40)
    assert _fired(rig, "http_500") == 3 and _fired(rig, "http_502") == 3


async def _inbound_rows(database_url: str, dedup_keys: list[str]) -> list[InboundMessage]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(InboundMessage).where(InboundMessage.dedup_key.in_(dedup_keys))
            )
            return list(rows)
    finally:
        await engine.dispose()


def _sends_to(rig: Rig, chat: int, status: int) -> int:
    return sum(
        1
        for r in rig.telegram.calls("sendMessage")
        if r.status == status and r.params and str(r.params.get("chat_id")) == str(chat)
    )


@pytest.mark.parametrize("learns_from", ["my_chat_member", "403"])
async def test_blocked_user_then_back(rig: Rig, learns_from: str) -> None:
    traffic = Traffic(rig.udesk, rig.telegram, 3, 8300)
    await traffic.connect()
    await traffic.burst(writes=1, replies=1)
    await traffic.wait_arrived()
    blocked, others = traffic.customers[0], traffic.customers[1:]
    if learns_from == "my_chat_member":
        rig.telegram.block(blocked.user)  # the bridge is told by an update
    else:
        rig.telegram.user(blocked.user).blocked = True  # it finds out when it sends
    # While blocked: the agent's replies to them are undeliverable; the others go on.
    lost = [await traffic.reply(blocked, deliverable=False) for _ in range(2)]
    await traffic.burst(writes=1, replies=2, customers=others)
    await eventually(
        lambda: rig.udesk.customer_by_token(blocked.token).online_state == 0,
        what="the blocked customer offline in Udesk",
    )
    keys = [f"udesk:{blocked.reply_ids[t]}" for t in lost]

    async def failed() -> bool:
        rows = await _inbound_rows(rig.database_url, keys)
        return len(rows) == 2 and all(r.status == "failed" for r in rows)

    await eventually(failed, what="undeliverable replies kept as failed")
    # Kept, not retried: one attempt each, and no further sends are tried.
    attempts = {r.dedup_key: r.attempts for r in await _inbound_rows(rig.database_url, keys)}
    refused = _sends_to(rig, blocked.chat, 403)
    await asyncio.sleep(2.5)  # longer than the lease and the first backoffs
    again = {r.dedup_key: r.attempts for r in await _inbound_rows(rig.database_url, keys)}
    assert again == attempts and set(attempts.values()) == {1}, attempts
    assert _sends_to(rig, blocked.chat, 403) == refused
    # One 403 teaches the bridge; the next reply is not even tried.
    assert refused == 1 if learns_from == "403" else refused <= 1

    # The customer writes again: reachable again, and new replies reach them.
    traffic.write(blocked)
    await eventually(
        lambda: rig.udesk.customer_by_token(blocked.token).online_state == 1,
        what="the customer back online in Udesk",
    )
    await traffic.burst(writes=1, replies=2)
    await traffic.check()


async def test_connection_dropped_during_get_updates(rig: Rig) -> None:
    traffic = Traffic(rig.udesk, rig.telegram, 3, 8400)
    await traffic.connect()
    before = len(rig.telegram.calls("getUpdates"))
    rig.telegram.inject_fault(method="getUpdates", kind="drop_connection", count=2, delay=0.2)
    await traffic.burst(writes=3, replies=2)
    await traffic.check(timeout=30)
    assert _fired(rig, "drop_connection") == 2
    assert len(rig.telegram.calls("getUpdates")) > before + 2  # it kept polling


async def test_connection_dropped_during_sends(rig: Rig) -> None:
    # The simulator drops the connection before it handles the request (nothing is
    # stored), so a resend cannot duplicate: exactly once is expected.
    traffic = Traffic(rig.udesk, rig.telegram, 3, 8500)
    await traffic.connect()
    rig.telegram.inject_fault(method="sendMessage", kind="drop_connection", count=4)
    await traffic.burst(writes=2, replies=3)
    await traffic.check(timeout=30)
    assert _fired(rig, "drop_connection") == 4


async def test_download_cut_halfway(rig: Rig) -> None:
    traffic = Traffic(rig.udesk, rig.telegram, 2, 8600)
    await traffic.connect()
    sender = traffic.customers[0]
    cut = rig.telegram.inject_fault(method="file", kind="truncate_download", count=1)
    traffic.write(sender)
    rig.telegram.inject_photo(sender.user)
    traffic.write(sender)
    await traffic.burst(writes=1, replies=2)
    await traffic.check(timeout=30)
    assert cut.fired == 1
    assert rig.telegram.stats["downloads"] == 1  # the retry, whole
    photo = next(m for m in rig.telegram.history(sender.chat) if m.media_kind == "photo")
    original = photo.files[-1].data
    kinds = [m.type for m in rig.udesk.messages_for(sender.token)]
    assert kinds.count("image") == 1, kinds
    # The photo sits between the two texts it was written between.
    assert kinds == ["message", "message", "image", "message", "message"], kinds
    image = next(m for m in rig.udesk.messages_for(sender.token) if m.type == "image")
    async with aiohttp.ClientSession() as http, http.get(image.data["content"]) as response:
        assert response.status == 200
        assert await response.read() == original  # the whole file, not the first half


async def _readyz(rig: Rig) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{rig.bridge_url}/readyz") as r:
        return r.status, await r.json()


async def test_intake_restarted_after_the_poller_died(pg_url: str, tmp_path: Path) -> None:
    def front_end_down(sims: Sims) -> None:
        # Telegram's front end answers 502 to deleteWebhook, the poller's first call: the
        # poller dies on it, every time it is started, while this lasts.
        sims.telegram.inject_fault(method="deleteWebhook", kind="http_502", count=None)

    async with open_rig(pg_url, tmp_path / "media", before_start=front_end_down) as rig:

        async def intake_down() -> dict[str, Any] | None:
            status, body = await _readyz(rig)
            return body if status == 503 and body["down"] == ["telegram intake"] else None

        body = await eventually(intake_down, what="/readyz naming the intake down")
        assert body["checks"]["telegram intake"].startswith("telegram intake down")
        rig.telegram.clear_faults()
        traffic = Traffic(rig.udesk, rig.telegram, 2, 8700)
        await traffic.connect()
        await traffic.burst(writes=2, replies=1)
        await traffic.check()
        status, body = await _readyz(rig)
        assert (status, body["checks"]["telegram intake"]) == (200, "ok")


async def test_an_update_the_database_refuses_fails_alone(rig: Rig) -> None:
    traffic = Traffic(rig.udesk, rig.telegram, 2, 8800)
    await traffic.connect()
    c = traffic.customers[0]
    # A /start whose parameter holds a NUL, which PostgreSQL refuses in a text column:
    # that update fails at once, and the customer's next messages go on without waiting.
    bad = rig.telegram.inject_command(c.user, "start", "promo\x00code")
    await traffic.burst(writes=2, replies=1)
    await traffic.wait_arrived(timeout=8)
    await traffic.check(timeout=5)
    engine = create_engine(rig.database_url)
    try:
        async with engine.connect() as conn:
            failed = list(
                await conn.execute(select(TelegramUpdate).where(TelegramUpdate.status == "failed"))
            )
    finally:
        await engine.dispose()
    assert [(r.dedup_key, r.attempts) for r in failed] == [(f"u:{bad.update_id}", 1)]
    assert "unstorable value" in (failed[0].last_error or "")
