"""The dispatcher: every record handled once, each customer's in order, also when a worker
goes on with a customer's next record itself (the completion takes it)."""

from __future__ import annotations

import asyncio
import random

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.store.db import create_engine, session_factory
from bridge.store.dispatcher import Dispatcher, Done, Fail, Outcome, Retry
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


async def test_lines_move_without_waiting_for_the_poll_timer(engine: AsyncEngine) -> None:
    """A customer's next record goes as soon as the one before it is done, whether it was
    waiting when that one was claimed or arrived while it was in flight; the claim loop is
    not woken after records whose line is empty (a claim that would find nothing)."""
    sessions = session_factory(engine)

    async def put(key: str) -> None:
        async with sessions.begin() as s:
            await enqueue(s, InboundMessage, dedup_key=key, lock="c0", kind="t", payload={})

    for n in range(3):
        await put(f"early-{n}")
    queue = DurableQueue(sessions, InboundMessage, worker_id="w1")
    waker = Waker(["x"])
    seen: list[str] = []
    in_flight = asyncio.Event()
    go_on = asyncio.Event()
    four_seen = asyncio.Event()

    async def handler(record: Claimed) -> Outcome:
        if record.dedup_key == "early-2":
            in_flight.set()
            await go_on.wait()
        seen.append(record.dedup_key)
        if len(seen) == 4:
            four_seen.set()
        return Done({"telegram_message_ids": "1"})

    # A poll every 30 s: anything slower than a wake would time the test out.
    dispatcher = Dispatcher(queue, handler, waker=waker, channel="x", poll_interval=30)
    dispatcher.start()
    try:
        await asyncio.wait_for(in_flight.wait(), 5)
        await put("late-0")
        waker.wake("x")  # as a commit that wrote to the queue does; the claim passes it over
        await asyncio.sleep(0.2)
        go_on.set()
        await asyncio.wait_for(four_seen.wait(), 5)
    finally:
        await asyncio.wait_for(dispatcher.stop(), 10)
    assert seen == ["early-0", "early-1", "early-2", "late-0"]


async def test_an_outcome_the_database_refuses_is_kept_plainly_not_retried(
    pg_url: str,
) -> None:
    """A dead letter whose error quotes a NUL from outside (PostgreSQL refuses it in text):
    recorded once, escaped, and the record is not handled again when its lease runs out."""
    engine = create_engine(pg_url)
    sessions = session_factory(engine)
    async with sessions.begin() as s:
        await enqueue(s, InboundMessage, dedup_key="nul", lock="c0", kind="t", payload={})
    queue = DurableQueue(sessions, InboundMessage, worker_id="w1", lease_seconds=1)
    handled: list[int] = []

    async def handler(record: Claimed) -> Outcome:
        handled.append(record.id)
        return Fail("Bad Request: button URL 'javascript:\x00' is invalid")

    dispatcher = Dispatcher(queue, handler, waker=Waker(["x"]), channel="x", poll_interval=0.1)
    dispatcher.start()
    try:
        await asyncio.sleep(3)  # three leases
    finally:
        await asyncio.wait_for(dispatcher.stop(), 15)
    async with sessions() as s:
        row = (await s.scalars(select(InboundMessage))).one()
    await engine.dispose()
    assert handled == [row.id]
    assert (row.status, row.attempts) == (RecordStatus.FAILED.value, 1)
    assert row.last_error == "Bad Request: button URL 'javascript:\\x00' is invalid"
