"""The dispatcher: every record handled once, each customer's in order, also when a worker
goes on with a customer's next record itself (the completion takes it)."""

from __future__ import annotations

import asyncio
import random

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.store.db import session_factory
from bridge.store.dispatcher import Dispatcher, Done, Outcome, Retry
from bridge.store.notify import Waker
from bridge.store.queue import Claimed, DurableQueue, enqueue
from bridge.store.tables import InboundMessage, RecordStatus


async def test_each_record_once_and_each_line_in_order(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions.begin() as s:
        for n in range(12):
            for c in range(6):
                await enqueue(
                    s, InboundMessage, dedup_key=f"c{c}-{n}", lock=f"c{c}", kind="t", payload={}
                )
    queue = DurableQueue(sessions, InboundMessage, worker_id="w1")
    seen: list[str] = []
    chained: list[bool] = []
    failed_once: set[str] = set()
    finished = asyncio.Event()

    async def handler(record: Claimed) -> Outcome:
        await asyncio.sleep(random.uniform(0, 0.003))
        chained.append(record.more_waiting)
        if record.dedup_key == "c2-5" and record.dedup_key not in failed_once:
            failed_once.add(record.dedup_key)  # a retry in the middle of a line
            return Retry("try again", delay=0.0)
        seen.append(record.dedup_key)
        if len(seen) == 72:
            finished.set()
        return Done({"telegram_message_ids": "1"})

    dispatcher = Dispatcher(
        queue, handler, waker=Waker(["x"]), channel="x", concurrency=4, poll_interval=0.05
    )
    dispatcher.start()
    try:
        await asyncio.wait_for(finished.wait(), 60)
    finally:
        await dispatcher.stop()
    assert sorted(seen) == sorted(f"c{c}-{n}" for n in range(12) for c in range(6))
    for c in range(6):
        line = [int(k.split("-")[1]) for k in seen if k.startswith(f"c{c}-")]
        assert line == list(range(12)), (c, line)
    if engine.dialect.name == "postgresql":
        assert any(chained)  # lines with more waiting were said to have more, and chained
    async with sessions() as s:
        statuses = set((await s.scalars(select(InboundMessage.status))).all())
    assert statuses == {RecordStatus.DONE.value}
