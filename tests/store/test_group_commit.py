"""Group commit: concurrent writes share a transaction, writes of one runner share a call,
each caller gets its own result, and a failed batch retries each write alone."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bridge.store.db import session_factory
from bridge.store.group_commit import GroupCommit
from bridge.store.queue import enqueue_many
from bridge.store.tables import OutboundMessage


async def test_writes_of_one_runner_share_a_call_and_get_their_own_results(
    engine: AsyncEngine,
) -> None:
    sessions = session_factory(engine)
    writes = GroupCommit(sessions, name="test")
    calls: list[list[str]] = []

    async def insert(session: AsyncSession, keys: list[str]) -> list[bool]:
        if "bad" in keys:
            raise ValueError("refused")
        calls.append(keys)
        records = [{"dedup_key": k, "lock": "c1", "kind": "t", "payload": {}} for k in keys]
        created = await enqueue_many(session, OutboundMessage, records)
        return [created.pop(k, None) is not None for k in keys]  # a key is new once

    results = await asyncio.gather(
        *(writes.run_together(insert, key) for key in ("a", "b", "a", "c"))
    )
    assert results == [True, True, False, True]  # the second "a" was a duplicate
    assert calls == [["a", "b", "a", "c"]]  # one call, in arrival order

    # A bad write fails alone; the others of its batch still land.
    outcomes: list[Any] = await asyncio.gather(
        *(writes.run_together(insert, key) for key in ("d", "bad", "e")), return_exceptions=True
    )
    assert outcomes[0] is True and outcomes[2] is True
    assert isinstance(outcomes[1], ValueError)
    async with sessions() as s:
        keys = list(await s.scalars(select(OutboundMessage.dedup_key).order_by(OutboundMessage.id)))
    assert keys == ["a", "b", "c", "d", "e"]


async def test_a_plain_write_keeps_its_place_among_shared_ones(engine: AsyncEngine) -> None:
    writes = GroupCommit(session_factory(engine), name="test")
    order: list[str] = []

    async def shared(session: AsyncSession, items: list[str]) -> list[None]:
        order.extend(items)
        return [None] * len(items)

    async def alone(session: AsyncSession) -> str:
        order.append("alone")
        return "done"

    results = await asyncio.gather(
        writes.run_together(shared, "x"), writes.run(alone), writes.run_together(shared, "y")
    )
    assert results == [None, "done", None]
    # The shared ones go where the first of them stood.
    assert order == ["x", "y", "alone"]


async def test_a_fast_path_writes_the_batches_it_can_and_declines_the_others(
    engine: AsyncEngine,
) -> None:
    """``run_together(first=…)``: a batch whose writes share a fast path is written by it
    (in the ``single`` sessions, autocommit on PostgreSQL); a batch it declines, or fails
    on, goes the usual way, where a bad write still gets its own error."""
    sessions = session_factory(engine)
    writes = GroupCommit(sessions, name="test")
    ways: list[str] = []

    def inserting(way: str) -> Any:
        async def insert(session: AsyncSession, keys: list[str]) -> list[bool] | None:
            if way == "fast" and any(k.startswith("slow") for k in keys):
                return None  # declined: nothing written
            if "bad" in keys:
                raise ValueError("refused")
            ways.append(way)
            records = [{"dedup_key": k, "lock": "c1", "kind": "t", "payload": {}} for k in keys]
            created = await enqueue_many(session, OutboundMessage, records)
            return [created.pop(k, None) is not None for k in keys]

        return insert

    usual, fast = inserting("usual"), inserting("fast")

    async def batch(*keys: str) -> list[Any]:
        return await asyncio.gather(
            *(writes.run_together(usual, k, first=fast) for k in keys), return_exceptions=True
        )

    assert await batch("a", "b", "a") == [True, True, False]
    assert ways == ["fast"]
    assert await batch("c", "slow-1") == [True, True]
    assert ways == ["fast", "usual"]
    outcomes = await batch("d", "bad")
    assert outcomes[0] is True and isinstance(outcomes[1], ValueError)
    async with sessions() as s:
        keys = list(await s.scalars(select(OutboundMessage.dedup_key).order_by(OutboundMessage.id)))
    assert keys == ["a", "b", "c", "slow-1", "d"]
