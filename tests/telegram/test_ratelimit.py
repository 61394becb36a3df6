"""The bot-wide limit: as many messages as Telegram allows, and never one more."""

from __future__ import annotations

import asyncio

import pytest
from telegram.ext import ExtBot

from bridge.sandbox.telegram_sim import TelegramSimulator
from bridge.telegram.ratelimit import JITTER_MARGIN, SlidingWindow, WindowRateLimiter

TOKEN = "123456:TEST-token"


@pytest.fixture(autouse=True)
def _timedelta_periods(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


async def test_window_never_lets_more_than_its_calls_through() -> None:
    window = SlidingWindow(10, 0.2)
    loop = asyncio.get_running_loop()
    released: list[float] = []

    async def one() -> None:
        await window.wait()
        released.append(loop.time())
        window.done()

    await asyncio.gather(*(one() for _ in range(35)))
    assert len(released) == 35
    for i, start in enumerate(released):
        inside = [t for t in released[i:] if t - start < 0.2 * (1 + JITTER_MARGIN) - 1e-3]
        assert len(inside) <= 10
    # ...and does not waste the allowance: 35 releases take about three and a half windows.
    assert released[-1] - released[0] < 4 * 0.2 * (1 + JITTER_MARGIN)


async def test_sends_slow_on_the_way_never_arrive_more_than_its_calls_in_a_window() -> None:
    """What Telegram counts is arrivals: a send held up on the way (a busy loop, a slow
    network) must not land in one window with those released after it."""
    window = SlidingWindow(10, 0.2)
    loop = asyncio.get_running_loop()
    arrived: list[float] = []
    delays = [0.15] + [0.0] * 39  # the first one is slow

    async def one(delay: float) -> None:
        await window.wait()
        await asyncio.sleep(delay)  # on the way
        arrived.append(loop.time())
        window.done()

    await asyncio.gather(*(one(d) for d in delays))
    arrived.sort()
    for i, start in enumerate(arrived):
        assert len([t for t in arrived[i:] if t - start < 0.2 - 1e-3]) <= 10


async def test_bot_sends_at_telegrams_limit_with_no_429(telegram_sim: TelegramSimulator) -> None:
    sim = telegram_sim
    chats = list(range(5000, 5075))
    for chat in chats:
        sim.add_user(chat)
    sim.enforce_limits(True)
    bot = ExtBot(
        TOKEN,
        base_url=sim.bot_base_url,
        base_file_url=sim.file_base_url,
        rate_limiter=WindowRateLimiter(30, 1.0),
    )
    async with bot:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.gather(*(bot.send_message(chat, "hello") for chat in chats))
        elapsed = loop.time() - started
    assert sim.stats["429"] == 0
    assert sim.max_sent_per_second() <= 30
    # 75 messages: 30 at once, 30 more a window later, the rest a window after that.
    assert elapsed < 2 * 1.05 + 1.0
