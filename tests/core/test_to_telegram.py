"""What each agent-side event means for the customer's chat and session, read alone
(``accept_push`` in a transaction; no HTTP, no dispatcher)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.core.model import AgentMessage, UserInfo
from bridge.core.texts import Texts
from bridge.core.to_telegram import accept_push, survey_choices
from bridge.store import customers
from bridge.store.db import session_factory
from bridge.store.tables import ImSession, InboundMessage

TOKEN = "tg-901"


async def _push(engine: AsyncEngine, *messages: AgentMessage) -> int:
    sessions = session_factory(engine)
    async with sessions.begin() as s:
        await customers.upsert_from_user(
            s, UserInfo(user_id=901, chat_id=901, first_name="Ann", language_code="en")
        )
    async with sessions.begin() as s:
        return await accept_push(s, Texts(), TOKEN, list(messages))


async def _chat(engine: AsyncEngine) -> list[tuple[str, str, dict[str, Any]]]:
    async with session_factory(engine)() as s:
        rows = (await s.execute(select(InboundMessage).order_by(InboundMessage.id))).scalars()
        return [(r.status, r.kind, r.payload["item"]) for r in rows]


async def test_an_agent_joining_opens_the_session_and_tells_the_customer(
    engine: AsyncEngine,
) -> None:
    joined = AgentMessage("j1", "start_session", agent_name="Tom", im_sub_session_id=55)
    assert await _push(engine, joined) == 1
    [(status, _, item)] = await _chat(engine)
    assert status == "todo" and "Tom" in item["html"]
    async with session_factory(engine)() as s:
        session = await s.scalar(select(ImSession).where(ImSession.im_sub_session_id == 55))
    assert session is not None and session.agent_name == "Tom"


async def test_the_same_event_twice_changes_nothing_twice(engine: AsyncEngine) -> None:
    joined = AgentMessage("j1", "start_session", agent_name="Tom", im_sub_session_id=55)
    assert await _push(engine, joined) == 1
    assert await _push(engine, joined) == 0
    assert len(await _chat(engine)) == 1
    async with session_factory(engine)() as s:
        count = len((await s.execute(select(ImSession))).scalars().all())
    assert count == 1


async def test_a_hidden_message_is_kept_but_never_shown(engine: AsyncEngine) -> None:
    assert await _push(engine, AgentMessage("h1", "hidden", content="internal note")) == 0
    [(status, _, item)] = await _chat(engine)
    assert status == "discarded" and item["html"] == "internal note"


async def test_several_images_in_one_push_become_one_album(engine: AsyncEngine) -> None:
    images = [AgentMessage(f"i{n}", "image", content=f"https://x.test/{n}.png") for n in (1, 2)]
    text = AgentMessage("t1", "text", content="see above")
    assert await _push(engine, *images, text) == 2
    kinds = [kind for _, kind, _ in await _chat(engine)]
    assert kinds == ["album", "text"]


def test_survey_choices_from_stars_and_plain_options() -> None:
    stars = {
        "show_type": "star",
        "star": {"options": [{"id": 3, "text": "good"}, {"id": 2, "text": "bad"}]},
    }
    assert survey_choices(stars) == [(3, "⭐⭐ good"), (2, "⭐ bad")]
    plain = {"options": [{"id": 1, "text": "yes"}, {"id": 4, "enabled": False}, {"id": "x"}]}
    assert survey_choices(plain) == [(1, "yes")]
