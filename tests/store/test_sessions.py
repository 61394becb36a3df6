"""What a send needs, read for one customer or for a claimed batch at once."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.core.model import UserInfo
from bridge.store import customers
from bridge.store import sessions as session_repo
from bridge.store.db import session_factory
from bridge.store.tables import ImSession, SessionState, Survey


async def test_reading_many_for_send_answers_as_reading_each(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions.begin() as s:
        ids = []
        for user in (901, 902, 903):
            customer, _ = await customers.upsert_from_user(s, UserInfo(user_id=user, chat_id=user))
            ids.append(customer.id)
        # 901: an agent session open; 902: a closed one whose survey waits for a remark;
        # 903: nothing.
        s.add(ImSession(customer_id=ids[0], assign_type="agent", state=SessionState.AGENT.value))
        closed = ImSession(customer_id=ids[1], assign_type="agent", state=SessionState.CLOSED.value)
        s.add(closed)
        await s.flush()
        s.add(Survey(session_id=closed.id, awaiting_remark=True))
    async with sessions() as s:
        many = await session_repo.load_many_for_send(s, {*ids, 999_999})
    assert set(many) == set(ids)  # a customer that does not exist is absent
    for customer_id in ids:
        async with sessions() as s:
            one = await session_repo.load_for_send(s, customer_id)
        customer, open_session, remark = many[customer_id]
        assert one[0] is not None and customer.id == one[0].id
        assert (open_session.id if open_session else None) == (one[1].id if one[1] else None)
        assert remark == one[2]
    assert many[ids[0]][1] is not None and many[ids[0]][1].state == "agent"
    assert many[ids[1]][1] is None and many[ids[1]][2] is True
    assert many[ids[2]][1] is None and many[ids[2]][2] is False
