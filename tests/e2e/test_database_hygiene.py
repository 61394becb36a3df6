"""The running bridge leaves no transaction open on PostgreSQL.

A session idle in a transaction holds back PostgreSQL's cleanup of every row that died after
it began: autovacuum removes nothing, index scans keep visiting dead entries, and the queues
slow down as they bloat, by the day.  The poller's lock connection once did exactly that for
the life of the process."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from bridge.store.db import create_engine
from tests.e2e.conftest import World

USER = {"id": 8101, "first_name": "Ada", "language_code": "en"}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_no_transaction_stays_open_after_a_conversation(world: World) -> None:
    world.telegram.inject_text(USER, "hello")
    await world.eventually(lambda: world.udesk.messages_for("tg-8101"), what="message in Udesk")
    await world.udesk.drain()
    await world.udesk.agent_reply("tg-8101", "Hi Ada")
    await world.eventually(
        lambda: any("Hi Ada" in t for t in world.texts_to(8101)), what="agent reply"
    )
    await asyncio.sleep(1.5)  # the poller checks its lock before every getUpdates
    engine = create_engine(world.settings.database_url.get_secret_value())
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT state, left(query, 60) AS query FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND xact_start < now() - interval '1 second'"
                )
            )
            lingering = [(row.state, row.query) for row in rows]
    finally:
        await engine.dispose()
    assert lingering == []
