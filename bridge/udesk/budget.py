"""One rate budget shared by every call to Udesk, served by priority.

Udesk enforces one quota per company (``UDESK_RATE_LIMIT``, 60 calls a minute by default)
across all endpoints, so the bridge keeps a single budget and decides *who* gets the next
call: a customer's message must not wait behind a queue-status poll, and a typing preview
is the first thing to drop when calls are scarce.

Why hand-written: ``aiolimiter`` (and the other asyncio limiters) serve waiters in arrival
order and have no notion of priority, so a burst of polls would delay messages.  What is
needed is small: a token count plus a heap of waiting futures, so that is all this is.

Tokens: the budget holds ``calls`` tokens; a grant spends one, and it comes back
``per_seconds`` after the call made with it ended (``restamp``; after the grant for callers
that never say).  That is a token bucket whose tokens refill one by one (a sliding window),
which unlike a classic bucket (full burst *plus* refill) never lets more than ``calls``
calls into any window of ``per_seconds``.  Counting from the end of the call matters: a call
reaches Udesk some time after its grant (a connection to open, a slow network), and
counting from the grant let a burst granted early and one granted a window later land at
Udesk less than a window apart (the benchmark saw 70 calls in a 40-call window).  Counted
from the end, every call that reaches Udesk inside a window held a token during it, so the
vendor's quota is never exceeded by the bridge itself.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Generator
from enum import IntEnum
from types import TracebackType
from typing import Any

__all__ = ["Priority", "RateBudget"]


class Priority(IntEnum):
    """Lower value is served first."""

    MESSAGE = 0  # customer messages and session changes (create, transfer)
    SURVEY = 1  # surveys and closes
    POLL = 2  # queue status polls, ticket polls, profile sync
    PREVIEW = 3  # typing previews: dropped first


class _Acquire:
    """What ``RateBudget.acquire`` returns: awaitable and an async context manager."""

    __slots__ = ("_budget", "_priority")

    def __init__(self, budget: RateBudget, priority: Priority) -> None:
        self._budget = budget
        self._priority = priority

    def __await__(self) -> Generator[Any, None, None]:
        return self._budget._acquire(self._priority).__await__()

    async def __aenter__(self) -> None:
        await self._budget._acquire(self._priority)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # A rate budget, not a concurrency limit: the token is spent whatever happens.
        return None


class RateBudget:
    """``calls`` grants per ``per_seconds``, higher priorities first.

    ``RateBudget(None)`` (or ``RateBudget.unlimited()``) grants everything at once, for
    benchmarks.  ``preview_reserve`` is how many tokens must stay free for a preview to be
    granted; by default a tenth of the budget, at least one.
    """

    def __init__(
        self,
        calls: int | None,
        per_seconds: float = 60.0,
        *,
        preview_reserve: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if calls is not None and calls < 1:
            raise ValueError("calls must be at least 1 (or None for unlimited)")
        if per_seconds <= 0:
            raise ValueError("per_seconds must be positive")
        self.calls = calls
        self.per_seconds = float(per_seconds)
        if preview_reserve is None:
            preview_reserve = 0 if calls is None else max(1, calls // 10)
        self.preview_reserve = preview_reserve
        self._clock = clock
        self._grants: deque[float] = deque()  # when each spent token was spent
        self._waiters: list[tuple[int, int, asyncio.Future[float]]] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        # Plain counters; metrics are wired to these elsewhere.
        self.granted = 0
        self.waits = 0
        self.wait_seconds_total = 0.0
        self.waits_by_priority: dict[Priority, int] = dict.fromkeys(Priority, 0)
        self.wait_seconds_by_priority: dict[Priority, float] = dict.fromkeys(Priority, 0.0)
        self.previews_granted = 0
        self.previews_refused = 0

    @classmethod
    def unlimited(cls) -> RateBudget:
        return cls(None)

    @property
    def is_unlimited(self) -> bool:
        return self.calls is None

    # -- inspection -------------------------------------------------------------------

    def tokens_available(self) -> int | None:
        """Tokens that could be granted right now (None when unlimited)."""
        if self.calls is None:
            return None
        self._expire(self._clock())
        return self.calls - len(self._grants)

    @property
    def waiting(self) -> int:
        """Callers currently waiting for a token."""
        return sum(1 for _, _, fut in self._waiters if not fut.done())

    # -- acquiring --------------------------------------------------------------------

    def acquire(self, priority: Priority = Priority.POLL) -> _Acquire:
        """Wait for a token: ``await budget.acquire(p)`` or ``async with budget.acquire(p)``."""
        return _Acquire(self, Priority(priority))

    def try_acquire_preview(self) -> bool:
        """A token for a message preview, now or never.

        Refused (False) while anybody waits or when no more than ``preview_reserve``
        tokens are left, so previews never delay or starve real calls.
        """
        if self.calls is None:
            self.granted += 1
            self.previews_granted += 1
            return True
        now = self._clock()
        self._expire(now)
        if self.waiting or self.calls - len(self._grants) <= self.preview_reserve:
            self.previews_refused += 1
            return False
        self._grants.append(now)
        self.granted += 1
        self.previews_granted += 1
        return True

    def try_preview(self) -> float | None:
        """``try_acquire_preview`` that returns the grant time (for ``restamp``), or None
        when refused."""
        if not self.try_acquire_preview():
            return None
        return self._grants[-1] if self._grants else self._clock()

    async def take(self, priority: Priority = Priority.POLL) -> float | None:
        """Wait for a token; returns when it was granted (for ``restamp``), None when the
        budget is unlimited."""
        return await self._acquire(Priority(priority))

    def restamp(self, granted_at: float | None) -> None:
        """The call made with the token granted at ``granted_at`` has ended: the token
        comes back ``per_seconds`` from now instead of from the grant."""
        if self.calls is None or granted_at is None:
            return
        try:
            self._grants.remove(granted_at)  # equal times are interchangeable
        except ValueError:
            return  # already expired: the call outlasted the window
        self._grants.append(self._clock())  # the latest time: the deque stays in order

    async def _acquire(self, priority: Priority) -> float | None:
        if self.calls is None:
            self.granted += 1
            return None
        now = self._clock()
        self._expire(now)
        # Only take a token straight away when nobody waits: never overtake a waiter.
        if not self._waiters and len(self._grants) < self.calls:
            self._grants.append(now)
            self.granted += 1
            return now
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[float] = loop.create_future()
        entry = (int(priority), next(self._seq), fut)
        heapq.heappush(self._waiters, entry)
        started = now
        try:
            self._dispatch()
            granted_at = await fut
        except asyncio.CancelledError:
            if entry in self._waiters:
                self._waiters.remove(entry)
                heapq.heapify(self._waiters)
            # If the token was already handed to us it stays spent: conservative.
            self._dispatch()
            raise
        waited = self._clock() - started
        self.waits += 1
        self.wait_seconds_total += waited
        self.waits_by_priority[priority] += 1
        self.wait_seconds_by_priority[priority] += waited
        return granted_at

    # -- machinery --------------------------------------------------------------------

    def _expire(self, now: float) -> None:
        horizon = now - self.per_seconds
        grants = self._grants
        while grants and grants[0] <= horizon:
            grants.popleft()

    def _dispatch(self) -> None:
        """Hand free tokens to the best waiters; arm a timer for the next free token."""
        assert self.calls is not None
        now = self._clock()
        self._expire(now)
        while self._waiters and len(self._grants) < self.calls:
            _, _, fut = heapq.heappop(self._waiters)
            if fut.done():  # cancelled while waiting
                continue
            self._grants.append(now)
            self.granted += 1
            fut.set_result(now)
        # Drop cancelled entries at the top so they do not keep the timer alive.
        while self._waiters and self._waiters[0][2].done():
            heapq.heappop(self._waiters)
        if self._waiters and self._timer is None:
            delay = max(self._grants[0] + self.per_seconds - now, 0.001)
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._dispatch()
