"""Pushes stored together (one group commit): what each made, in arrival order, once."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.core.model import AgentMessage, UserInfo
from bridge.core.texts import Texts
from bridge.core.to_telegram import accept_pushes
from bridge.store import customers
from bridge.store.db import session_factory
from bridge.store.tables import InboundMessage


def text(message_id: str, content: str) -> AgentMessage:
    return AgentMessage(message_id=message_id, kind="text", content=content)


async def test_a_batch_of_pushes_keeps_order_and_counts_each_once(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions.begin() as s:
        for user in (801, 802):
            await customers.upsert_from_user(s, UserInfo(user_id=user, chat_id=user))
    joined = AgentMessage(
        message_id="e1", kind="start_session", agent_name="Tom", im_sub_session_id=5
    )
    photo = AgentMessage(message_id="p1", kind="image", content="https://x.test/a.png")
    pushes = [
        ("tg-801", [text("a1", "first")], "udesk-a1"),
        ("tg-802", [text("b1", "for bob"), photo], "udesk-b1"),
        ("tg-801", [joined], "udesk-e1"),  # the long way: plain records before it go first
        ("tg-801", [text("a2", "second")], "udesk-a2"),
        ("tg-801", [text("a1", "first")], "udesk-a1"),  # the same push again
        ("tg-999", [text("z1", "nobody")], "udesk-z1"),  # unknown customer: kept, not shown
    ]
    async with sessions.begin() as s:
        made = await accept_pushes(s, Texts(), pushes)
    assert made == [1, 2, 1, 1, 0, 0]
    async with sessions() as s:
        rows = (await s.execute(select(InboundMessage).order_by(InboundMessage.id))).scalars()
        records = [(r.dedup_key, r.lock, r.status, r.correlation_id) for r in rows]
    assert [(key, lock) for key, lock, _, _ in records] == [
        ("udesk:a1", "chat:801"),
        ("udesk:b1", "chat:802"),
        ("udesk:p1", "chat:802"),
        ("udesk:e1", "chat:801"),
        ("udesk:a2", "chat:801"),
        ("udesk:z1", "unknown:tg-999"),
    ]
    assert records[-1][2] == "discarded"
    assert [cid for *_, cid in records[:5]] == [
        "udesk-a1",
        "udesk-b1",
        "udesk-b1",
        "udesk-e1",
        "udesk-a2",
    ]
