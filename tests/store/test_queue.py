"""The durable queue: dedup, per-lock order, concurrency, retries and lease recovery."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.store.db import create_engine, session_factory
from bridge.store.queue import DurableQueue, enqueue, enqueue_many
from bridge.store.tables import InboundMessage, OutboundMessage, RecordStatus


async def _put(engine: AsyncEngine, key: str, lock: str) -> int | None:
    async with session_factory(engine).begin() as session:
        return await enqueue(
            session, OutboundMessage, dedup_key=key, lock=lock, kind="text", payload={"k": key}
        )


def _queue(engine: AsyncEngine, worker: str = "w1", lease: float = 60) -> DurableQueue:
    return DurableQueue(
        session_factory(engine), OutboundMessage, worker_id=worker, lease_seconds=lease
    )


async def test_dedup_key_is_the_final_word(engine: AsyncEngine) -> None:
    assert await _put(engine, "tg:1:1", "c1") is not None
    assert await _put(engine, "tg:1:1", "c1") is None
    async with session_factory(engine)() as session:
        rows = (await session.execute(select(OutboundMessage))).scalars().all()
    assert [r.dedup_key for r in rows] == ["tg:1:1"]


async def test_one_record_per_lock_in_flight_in_order(engine: AsyncEngine) -> None:
    for i in range(3):
        await _put(engine, f"a{i}", "alice")
    await _put(engine, "b0", "bob")
    queue = _queue(engine)
    first = await queue.claim(10)
    # Only the head of each customer's line is handed out.
    assert [c.dedup_key for c in first] == ["a0", "b0"]
    assert await queue.claim(10) == []
    await queue.complete(first[0].id)
    assert [c.dedup_key for c in await queue.claim(10)] == ["a1"]


async def test_a_claim_says_whether_the_line_has_more_waiting(engine: AsyncEngine) -> None:
    """The dispatcher goes on with a customer's next record (or wakes its claim loop for it)
    only when the claim said one waits; a wrong "no" left the line to the poll timer."""
    for i in range(2):
        await _put(engine, f"a{i}", "alice")
    await _put(engine, "b0", "bob")
    queue = _queue(engine)
    first = {c.dedup_key: c.more_waiting for c in await queue.claim(10)}
    assert first == {"a0": True, "b0": False}


async def test_backoff_keeps_order_but_not_others_waiting(engine: AsyncEngine) -> None:
    await _put(engine, "a0", "alice")
    await _put(engine, "a1", "alice")
    await _put(engine, "b0", "bob")
    queue = _queue(engine)
    claimed = {c.dedup_key: c for c in await queue.claim(10)}
    await queue.retry(claimed["a0"].id, delay=60, error="udesk 5xx")
    await queue.complete(claimed["b0"].id)
    # a1 must wait for a0 even though a0 is backing off; bob is not blocked by alice.
    assert await queue.claim(10) == []
    await _put(engine, "b1", "bob")
    assert [c.dedup_key for c in await queue.claim(10)] == ["b1"]


async def test_claim_takes_the_heads_of_many_lines_in_order_up_to_the_limit(
    engine: AsyncEngine,
) -> None:
    # Forty customers, five records each, interleaved as pushes arrive.
    for n in range(5):
        for c in range(40):
            await _put(engine, f"c{c:02d}-{n}", f"c{c:02d}")
    queue = _queue(engine)
    first = await queue.claim(25)
    # The oldest heads first, one per customer, never a second record of a line.
    assert [c.dedup_key for c in first] == [f"c{c:02d}-0" for c in range(25)]
    second = await queue.claim(100)
    assert [c.dedup_key for c in second] == [f"c{c:02d}-0" for c in range(25, 40)]
    # Customer 3's head backs off: its line waits; the others move on as they finish.
    by_key = {c.dedup_key: c for c in first + second}
    await queue.retry(by_key["c03-0"].id, delay=60, error="5xx")
    for key, record in by_key.items():
        if key != "c03-0":
            await queue.complete(record.id)
    third = await queue.claim(100)
    assert [c.dedup_key for c in third] == [f"c{c:02d}-1" for c in range(40) if c != 3]


async def test_completing_many_at_once_keeps_each_outcome(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions.begin() as session:
        for c in range(4):
            await enqueue(
                session,
                InboundMessage,
                dedup_key=f"m{c}",
                lock=f"chat:{c}",
                kind="text",
                payload={},
            )
    queue = DurableQueue(sessions, InboundMessage, worker_id="w1")
    records = await queue.claim(10)
    assert len(records) == 4
    # The third was taken over by another worker meanwhile (its lease had lapsed).
    async with sessions.begin() as session:
        await session.execute(
            update(InboundMessage).where(InboundMessage.id == records[2].id).values(worker="w2")
        )
    items = [
        (records[0].id, {"telegram_message_ids": "11"}),
        (records[1].id, {"telegram_message_ids": "12,13"}),
        (records[2].id, {"telegram_message_ids": "14"}),
        (records[3].id, {"payload": {}}),  # not text: finished on its own
    ]
    async with sessions.begin() as session:
        outcomes = await queue.complete_many_in(session, items)
    assert outcomes == [True, True, False, True]
    async with sessions() as session:
        rows = {r.id: r for r in (await session.execute(select(InboundMessage))).scalars().all()}
    assert [rows[r.id].status for r in records] == ["done", "done", "doing", "done"]
    assert rows[records[1].id].telegram_message_ids == "12,13"
    assert rows[records[0].id].finished_at is not None
    assert rows[records[2].id].telegram_message_ids is None


async def test_enqueue_many_inserts_in_order_and_dedups(engine: AsyncEngine) -> None:
    assert await _put(engine, "k3", "c3") is not None  # seen before
    records = [
        {"dedup_key": f"k{i}", "lock": f"c{i % 7}", "kind": "text", "payload": {"i": i}}
        for i in range(120)  # more than one INSERT's worth
    ]
    records.append(dict(records[5]))  # the same record twice in one call
    async with session_factory(engine).begin() as session:
        created = await enqueue_many(session, OutboundMessage, records)
    assert set(created) == {f"k{i}" for i in range(120)} - {"k3"}
    async with session_factory(engine)() as session:
        rows = (
            await session.execute(select(OutboundMessage).order_by(OutboundMessage.id))
        ).scalars()
        keys = [r.dedup_key for r in rows]
    assert keys == ["k3", *(f"k{i}" for i in range(120) if i != 3)]
    ids = [created[k] for k in keys[1:]]
    assert ids == sorted(ids)  # ids follow the order given: a customer's order holds


async def test_retry_counts_attempts_and_fail_is_dead_letter(engine: AsyncEngine) -> None:
    await _put(engine, "a0", "alice")
    queue = _queue(engine)
    (rec,) = await queue.claim(1)
    await queue.retry(rec.id, delay=0, error="timeout")
    (rec,) = await queue.claim(1)
    assert rec.attempts == 2
    await queue.fail(rec.id, error="gave up")
    async with session_factory(engine)() as session:
        row = await session.get(OutboundMessage, rec.id)
    assert row is not None
    assert (row.status, row.last_error) == (RecordStatus.FAILED.value, "gave up")
    # A failed record no longer blocks the customer's next message.
    await _put(engine, "a1", "alice")
    assert [c.dedup_key for c in await queue.claim(1)] == ["a1"]


async def test_error_text_is_stored_without_the_bot_token(engine: AsyncEngine) -> None:
    """Whichever way a record ends with an error (retry, fail, discard, a note kept with a
    done record, PostgreSQL's batch completion too), a Bot API URL in the text is stored
    without the token."""
    token = "7123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    url = f"https://api.telegram.org/bot{token}/sendMessage"
    for key in ("retried", "failed", "discarded", "noted-1", "noted-2"):
        await _put(engine, key, key)
    queue = _queue(engine)
    claimed = {c.dedup_key: c.id for c in await queue.claim(10)}
    await queue.retry(claimed["retried"], delay=60, error=f"Telegram network error: {url}")
    await queue.fail(claimed["failed"], error=f"gave up: {url}")
    await queue.discard(claimed["discarded"], reason=f"discarded at {url}")
    async with session_factory(engine).begin() as session:
        notes = [(claimed[k], {"last_error": f"sent, but {url}"}) for k in ("noted-1", "noted-2")]
        assert await queue.complete_many_in(session, notes) == [True, True]
    async with engine.connect() as conn:  # plain SQL: the text as stored
        stored = dict(
            (await conn.execute(text("SELECT dedup_key, last_error FROM outbound_messages"))).all()
        )
    assert set(stored) == set(claimed)
    for key, error in stored.items():
        assert "bot<redacted>/sendMessage" in error and token.split(":")[1] not in error, key


async def test_expired_lease_is_taken_over(engine: AsyncEngine) -> None:
    await _put(engine, "a0", "alice")
    dead = _queue(engine, "dead-worker")
    (rec,) = await dead.claim(1)
    async with session_factory(engine).begin() as session:
        await session.execute(
            update(OutboundMessage).values(
                lease_expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            )
        )
    alive = _queue(engine, "alive-worker")
    assert await alive.recover_expired() == 1
    (again,) = await alive.claim(1)
    assert again.id == rec.id and again.attempts == 2
    # The dead worker waking up late cannot overwrite the new owner's outcome.
    assert await dead.complete(rec.id) is False
    assert await alive.complete(again.id) is True


async def test_release_gives_the_record_back_without_an_attempt(engine: AsyncEngine) -> None:
    await _put(engine, "a0", "alice")
    queue = _queue(engine)
    (rec,) = await queue.claim(1)
    await queue.release(rec.id)
    (again,) = await queue.claim(1)
    assert again.attempts == 1


async def test_concurrent_claimers_never_share_a_lock(pg_url: str) -> None:
    """Several claimers (as in several replicas) on PostgreSQL; SQLite is single-process."""
    engine = create_engine(pg_url)
    try:
        await _run_claimers(engine, workers=4)
    finally:
        await engine.dispose()


async def _run_claimers(engine: AsyncEngine, workers: int) -> None:
    customers = [f"c{i}" for i in range(6)]
    for n in range(5):
        for c in customers:
            await _put(engine, f"{c}:{n}", c)
    done: list[str] = []
    active: set[str] = set()
    violations: list[str] = []

    async def worker(name: str) -> None:
        queue = _queue(engine, name)
        idle = 0
        while idle < 20:
            batch = await queue.claim(2)
            if not batch:
                idle += 1
                await asyncio.sleep(0.01)
                continue
            idle = 0
            for rec in batch:
                if rec.lock in active:
                    violations.append(rec.lock)
                active.add(rec.lock)
            await asyncio.sleep(0.005)
            for rec in batch:
                active.discard(rec.lock)
                done.append(rec.dedup_key)
                await queue.complete(rec.id)

    await asyncio.gather(*(worker(f"w{i}") for i in range(workers)))
    assert violations == []
    assert sorted(done) == sorted(f"{c}:{n}" for c in customers for n in range(5))
    for c in customers:
        assert [k for k in done if k.startswith(f"{c}:")] == [f"{c}:{n}" for n in range(5)]
