"""The shared Udesk rate budget: quota, priorities, previews, unlimited mode."""

from __future__ import annotations

import asyncio
import time

import pytest

from bridge.udesk.budget import Priority, RateBudget


def test_priority_order() -> None:
    assert [p.name for p in sorted(Priority)] == ["MESSAGE", "SURVEY", "POLL", "PREVIEW"]


def test_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RateBudget(0, 60)
    with pytest.raises(ValueError):
        RateBudget(10, 0)


async def test_grants_up_to_calls_at_once_then_waits() -> None:
    budget = RateBudget(3, 0.3)
    started = time.monotonic()
    for _ in range(3):
        await budget.acquire(Priority.POLL)
    assert time.monotonic() - started < 0.1
    assert budget.tokens_available() == 0
    assert budget.waits == 0
    await budget.acquire(Priority.POLL)
    waited = time.monotonic() - started
    assert 0.25 <= waited < 1.0
    assert budget.waits == 1
    assert budget.wait_seconds_total >= 0.25
    assert budget.waits_by_priority[Priority.POLL] == 1
    assert budget.granted == 4


async def test_never_more_than_calls_in_any_window() -> None:
    budget = RateBudget(4, 0.2)
    stamps: list[float] = []

    async def caller() -> None:
        async with budget.acquire(Priority.MESSAGE):
            stamps.append(time.monotonic())

    await asyncio.gather(*(caller() for _ in range(12)))
    stamps.sort()
    for i in range(len(stamps) - 4):
        # the (i+4)-th grant is at least one window after the i-th
        assert stamps[i + 4] - stamps[i] >= 0.2 - 0.03


async def test_message_waiter_beats_earlier_poll_waiters() -> None:
    budget = RateBudget(1, 0.1)
    await budget.acquire(Priority.POLL)  # budget now empty
    order: list[str] = []

    async def caller(name: str, priority: Priority) -> None:
        await budget.acquire(priority)
        order.append(name)

    tasks = [asyncio.create_task(caller(f"poll{i}", Priority.POLL)) for i in range(3)]
    await asyncio.sleep(0.01)  # the polls are queued first
    tasks.append(asyncio.create_task(caller("preview", Priority.PREVIEW)))
    tasks.append(asyncio.create_task(caller("survey", Priority.SURVEY)))
    await asyncio.sleep(0.01)
    tasks.append(asyncio.create_task(caller("message", Priority.MESSAGE)))
    await asyncio.gather(*tasks)
    assert order == ["message", "survey", "poll0", "poll1", "poll2", "preview"]
    assert budget.waits == 6


async def test_newcomer_does_not_overtake_waiters() -> None:
    budget = RateBudget(1, 0.1)
    await budget.acquire(Priority.MESSAGE)
    order: list[str] = []

    async def caller(name: str, priority: Priority) -> None:
        await budget.acquire(priority)
        order.append(name)

    first = asyncio.create_task(caller("first", Priority.POLL))
    await asyncio.sleep(0.15)  # a token is free again, but only when someone looks
    second = asyncio.create_task(caller("second", Priority.POLL))
    await asyncio.gather(first, second)
    assert order == ["first", "second"]


async def test_cancelled_waiter_gives_its_turn_away() -> None:
    budget = RateBudget(1, 0.1)
    await budget.acquire(Priority.MESSAGE)
    cancelled = asyncio.create_task(budget._acquire(Priority.MESSAGE))
    other = asyncio.create_task(budget._acquire(Priority.POLL))
    await asyncio.sleep(0.01)
    assert budget.waiting == 2
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert budget.waiting == 1
    await asyncio.wait_for(other, 1.0)
    assert budget.waiting == 0


async def test_previews_refused_when_tight_or_someone_waits() -> None:
    budget = RateBudget(10, 0.5, preview_reserve=3)
    for _ in range(7):
        assert budget.try_acquire_preview()  # 10 → 3 tokens left
    assert not budget.try_acquire_preview()  # only the reserve is left
    assert budget.previews_granted == 7
    assert budget.previews_refused == 1
    # the reserve is still there for real calls
    for _ in range(3):
        await budget.acquire(Priority.MESSAGE)
    assert budget.tokens_available() == 0
    waiter = asyncio.create_task(budget._acquire(Priority.POLL))
    await asyncio.sleep(0.01)
    assert budget.waiting == 1
    assert not budget.try_acquire_preview()
    await waiter
    # the window has passed: plenty of tokens and nobody waiting
    await asyncio.sleep(0.55)
    assert budget.try_acquire_preview()


async def test_default_preview_reserve() -> None:
    budget = RateBudget(60, 60)
    assert budget.preview_reserve == 6
    granted = sum(budget.try_acquire_preview() for _ in range(100))
    assert granted == 54  # granted while more than 6 tokens were left
    assert budget.tokens_available() == 6


async def test_unlimited() -> None:
    budget = RateBudget.unlimited()
    assert budget.is_unlimited
    assert budget.tokens_available() is None
    started = time.monotonic()
    for _ in range(10_000):
        await budget.acquire(Priority.POLL)
    async with budget.acquire(Priority.MESSAGE):
        pass
    assert budget.try_acquire_preview()
    assert time.monotonic() - started < 2.0
    assert budget.waits == 0
    assert budget.granted == 10_002
    assert RateBudget(None).is_unlimited


async def test_a_token_comes_back_a_window_after_its_call_ended() -> None:
    """A call that reaches Udesk late (slow connection) must not let the next window's calls
    land less than a window after it: the window counts from the end of the call."""
    budget = RateBudget(2, 0.3)
    loop = asyncio.get_running_loop()
    first = await budget.take(Priority.MESSAGE)
    second = await budget.take(Priority.MESSAGE)
    await asyncio.sleep(0.2)  # the two calls take 0.2 s to reach Udesk and answer
    ended = loop.time()
    budget.restamp(first)
    budget.restamp(second)
    await budget.take(Priority.MESSAGE)
    # Not at 0.3 s after the grants but 0.3 s after the calls ended.
    assert loop.time() - ended >= 0.28
