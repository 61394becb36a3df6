"""The bot-wide send rate: PTB's ``AIORateLimiter`` with its overall limit kept by a window.

Telegram refuses more than 30 messages in any one-second window.  ``AIORateLimiter``'s
overall limit is an aiolimiter leaky bucket: with a capacity of 1 (one request every 1/N s)
each waiter wakes a little late and that lateness is lost for good (we measured 26.9 of 29
messages/s on a busy loop); with a capacity of N it lets a burst of N through right after
N were sent, which puts up to 2N sends inside one sliding second and earns 429s.  A fixed
timeline (the k-th send at start + k/N) keeps the average but bursts to catch up after the
loop stalls, which we also saw earn 429s.  What Telegram counts is a sliding window, and no
maintained limiter we know of keeps one, so ``SlidingWindow`` does that by hand: a send goes
only when fewer than N went out in the last window, each counted from its release until a
window after it finished, so the time it spent on the way cannot squeeze N+1 into one of
Telegram's windows.  Everything else (group limits, ``retry_after``) stays
PTB's.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.ext import AIORateLimiter

# Part of the window kept as a margin for Telegram's own timekeeping.  The time a send
# spends on the way is accounted for exactly (``SlidingWindow``), so the margin is small.
JITTER_MARGIN = 0.02


class SlidingWindow:
    """At most ``calls`` sends in any ``seconds * (1 + JITTER_MARGIN)`` window, released in
    turn, at least half an even interval apart (no needless bursts).

    A send holds its place from its release (``wait``) until a window after it finished
    (``done``): it reached Telegram somewhere in between, so however long each one took on
    the way, no window of Telegram's sees more than ``calls`` arrive.  Counting from the
    release alone let a send delayed on the way land in the next window with the ones
    released after it, and a loaded machine earned 429s that way (as the Udesk budget's
    calls once did: ``bridge.udesk.budget``)."""

    def __init__(self, calls: int, seconds: float) -> None:
        self.calls = calls
        self.window = seconds * (1 + JITTER_MARGIN)
        self.spacing = seconds / calls / 2
        self._finished: deque[float] = deque()  # when sends finished, oldest first
        self._in_flight = 0
        self._last_release = -math.inf
        self._turn = asyncio.Lock()  # waiters go in arrival order
        self._one_finished = asyncio.Event()

    async def wait(self) -> None:
        """Until a send may go; the caller calls ``done`` when it has finished."""
        async with self._turn:
            loop = asyncio.get_running_loop()
            while True:
                now = loop.time()
                while self._finished and self._finished[0] + self.window <= now:
                    self._finished.popleft()
                ready = max(now, self._last_release + self.spacing)
                if self._in_flight + len(self._finished) >= self.calls:
                    if not self._finished:  # all still on the way: wait for one
                        self._one_finished.clear()
                        await self._one_finished.wait()
                        continue
                    ready = max(ready, self._finished[0] + self.window)
                if ready <= now:
                    break
                await asyncio.sleep(ready - now)
            self._in_flight += 1
            self._last_release = now

    def done(self) -> None:
        """A send released by ``wait`` has finished (answered or failed)."""
        self._in_flight -= 1
        self._finished.append(asyncio.get_running_loop().time())
        self._one_finished.set()


class WindowRateLimiter(AIORateLimiter):
    """``AIORateLimiter`` whose bot-wide limit is a ``SlidingWindow``.

    Like PTB's overall limit it applies to requests addressed to a chat (sends, edits,
    answers), not to ``getUpdates`` or ``setWebhook``.
    """

    def __init__(self, calls: int, seconds: float, *, max_retries: int = 0) -> None:
        super().__init__(overall_max_rate=0, max_retries=max_retries)
        self.window = SlidingWindow(calls, seconds)

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        windowed = data.get("chat_id") is not None and not data.get("allow_paid_broadcast")
        if windowed:
            await self.window.wait()
        try:
            return await super().process_request(
                callback, args, kwargs, endpoint, data, rate_limit_args
            )
        finally:
            if windowed:
                self.window.done()
