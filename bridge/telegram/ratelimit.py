"""The bot-wide send rate: PTB's ``AIORateLimiter`` with its overall limit kept by a window.

Telegram refuses more than 30 messages in any one-second window.  ``AIORateLimiter``'s
overall limit is an aiolimiter leaky bucket: with a capacity of 1 (one request every 1/N s)
each waiter wakes a little late and that lateness is lost for good (we measured 26.9 of 29
messages/s on a busy loop); with a capacity of N it lets a burst of N through right after
N were sent, which puts up to 2N sends inside one sliding second and earns 429s.  A fixed
timeline (the k-th send at start + k/N) keeps the average but bursts to catch up after the
loop stalls, which we also saw earn 429s.  What Telegram counts is a sliding window, and no
maintained limiter we know of keeps one, so ``SlidingWindow`` does that by hand: a send goes
only when fewer than N went out in the last window, with a margin for the jitter between
leaving here and reaching Telegram.  Everything else (group limits, ``retry_after``) stays
PTB's.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.ext import AIORateLimiter

# Part of the window kept as a margin: a send reaches Telegram a little after it leaves,
# by a delay that varies from one to the next.
JITTER_MARGIN = 0.05


class SlidingWindow:
    """At most ``calls`` releases in any ``seconds * (1 + JITTER_MARGIN)`` window, in turn,
    at least half an even interval apart (no needless bursts)."""

    def __init__(self, calls: int, seconds: float) -> None:
        self.calls = calls
        self.window = seconds * (1 + JITTER_MARGIN)
        self.spacing = seconds / calls / 2
        self._released: deque[float] = deque(maxlen=calls)
        self._turn = asyncio.Lock()  # waiters go in arrival order

    async def wait(self) -> None:
        async with self._turn:
            loop = asyncio.get_running_loop()
            while True:
                now = loop.time()
                ready = now
                if self._released:
                    ready = max(ready, self._released[-1] + self.spacing)
                if len(self._released) == self.calls:
                    ready = max(ready, self._released[0] + self.window)
                if ready <= now:
                    break
                await asyncio.sleep(ready - now)
            self._released.append(now)


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
        if data.get("chat_id") is not None and not data.get("allow_paid_broadcast"):
            await self.window.wait()
        return await super().process_request(
            callback, args, kwargs, endpoint, data, rate_limit_args
        )
