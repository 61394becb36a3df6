"""After the purge, a push Udesk sends again is still recognised: one Telegram message."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import select

from bridge.store.retention import Purger, Retention
from bridge.store.tables import InboundMessage, OutboundMessage, TelegramUpdate
from tests.e2e.conftest import World
from tests.e2e.test_agent_to_customer import post_push
from tests.privacy.helpers import ANSWER, QUESTION, TOKEN, UID, converse, sessions_of, settle


async def test_replayed_push_after_purge_is_not_delivered_twice(world: World) -> None:
    await converse(world)
    push = {
        "customer_token": TOKEN,
        "assign_type": "agent",
        "messages": [
            {
                "type": "message",
                "message_id": "replay-after-purge",
                "agent_name": "Tom",
                "data": {"content": "Only once, please"},
            }
        ],
    }
    assert await post_push(world, json.dumps(push).encode()) == (200, "")
    await world.eventually(lambda: "Only once, please" in world.texts_to(UID))
    await settle(world)

    sessions = sessions_of(world)
    done = await Purger(sessions, Retention(0, 0, 0), pause=0).purge()
    assert done["inbound_payloads"] >= 2 and done["outbound_payloads"] >= 2
    assert done["update_payloads"] >= 2
    async with sessions() as s:
        record = await s.scalar(
            select(InboundMessage).where(InboundMessage.dedup_key == "udesk:replay-after-purge")
        )
        assert record is not None and record.payload == {} and record.status == "done"
        # No message text left anywhere in the queues.
        for table in (OutboundMessage, InboundMessage, TelegramUpdate):
            for row in (await s.scalars(select(table))).all():
                text = json.dumps(row.payload)
                assert QUESTION not in text and ANSWER not in text

    # Udesk pushes the same message again (a retry of a push it thinks was lost).
    assert await post_push(world, json.dumps(push).encode()) == (200, "")
    # And the bridge keeps working: a new agent message arrives after it, in order.
    await world.udesk.agent_reply(TOKEN, "after the purge")
    await world.eventually(lambda: "after the purge" in world.texts_to(UID))
    await asyncio.sleep(0.3)
    assert world.texts_to(UID).count("Only once, please") == 1
