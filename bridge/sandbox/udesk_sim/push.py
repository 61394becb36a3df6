"""Udesk's side of the pushes: POST JSON to the bridge's Receiving Message URL."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp

from .state import PushAttempt

if TYPE_CHECKING:
    from .simulator import UdeskSimulator

# "If there are 10 timeouts within 60 seconds, UDesk will stop calling the address for
# 60 seconds starting from the last timeout." (im-open-api.txt)
BREAKER_TIMEOUTS = 10
BREAKER_WINDOW = 60.0


OnDone = Callable[[PushAttempt], None]


class Pusher:
    def __init__(self, sim: UdeskSimulator) -> None:
        self.sim = sim
        self._client: aiohttp.ClientSession | None = None
        # One FIFO and one worker per customer: that customer's pushes leave in the order
        # they were made (start_session before the welcome, a reply after the assignment),
        # whether or not the caller waits for them.
        self._queues: dict[str, deque[tuple[Any, str, OnDone | None, asyncio.Future[Any]]]] = {}
        self._workers: set[str] = set()
        self._timeouts: deque[float] = deque()
        self._suppressed_until = 0.0

    def submit(
        self, body: Any, *, kind: str, key: str = "", on_done: OnDone | None = None
    ) -> asyncio.Future[PushAttempt]:
        """Queue one push attempt; await the future for its outcome, or don't.
        Udesk does not retry a failed push, and neither does the simulator."""
        future: asyncio.Future[PushAttempt] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(key, deque()).append((body, kind, on_done, future))
        if key not in self._workers:
            self._workers.add(key)
            self.sim.spawn(self._work(key), name=f"udesk-sim-push-{key}")
        return future

    async def push(self, body: Any, *, kind: str, key: str = "") -> PushAttempt:
        return await self.submit(body, kind=kind, key=key)

    async def post_once(self, url: str, body: Any, *, kind: str) -> PushAttempt:
        """A push to an explicit URL, outside the queue, the breaker and ``push_enabled``
        (the field push)."""
        attempt = PushAttempt(kind=kind, url=url, body=body, time=self.sim.clock())
        await self._post(url, body, attempt)
        self.sim.push_log.append(attempt)
        return attempt

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _work(self, key: str) -> None:
        queue = self._queues[key]
        try:
            while queue:
                body, kind, on_done, future = queue[0]
                attempt = await self._attempt(body, kind)
                queue.popleft()
                if on_done is not None:
                    on_done(attempt)
                if not future.done():
                    future.set_result(attempt)
        finally:
            # No await between the empty check and here, so nothing can slip in unseen.
            self._workers.discard(key)
            while queue:
                queue.popleft()[3].cancel()

    async def _attempt(self, body: Any, kind: str) -> PushAttempt:
        if self.sim.push_delay:
            await asyncio.sleep(self.sim.push_delay)
        url = self.sim.push_url
        attempt = PushAttempt(kind=kind, url=url, body=body, time=self.sim.clock())
        if not self.sim.push_enabled:
            attempt.error = "push disabled"
        elif not url:
            attempt.error = "no push_url"
        elif time.monotonic() < self._suppressed_until:
            attempt.error = "suppressed: 10 timeouts within 60 s"
        else:
            await self._post(url, body, attempt)
        self.sim.push_log.append(attempt)
        return attempt

    async def _post(self, url: str, body: Any, attempt: PushAttempt) -> None:
        if self._client is None or self._client.closed:
            self._client = aiohttp.ClientSession()
        started = time.monotonic()
        try:
            async with self._client.post(
                url, json=body, timeout=aiohttp.ClientTimeout(total=self.sim.push_timeout)
            ) as response:
                attempt.status = response.status
                attempt.response_text = (await response.text(errors="replace"))[:2000]
        except TimeoutError:
            attempt.error = "timeout"
            self._note_timeout()
        except aiohttp.ClientError as exc:
            attempt.error = f"{type(exc).__name__}: {exc}"
        attempt.duration = time.monotonic() - started

    def _note_timeout(self) -> None:
        now = time.monotonic()
        self._timeouts.append(now)
        while self._timeouts and now - self._timeouts[0] > BREAKER_WINDOW:
            self._timeouts.popleft()
        if len(self._timeouts) >= BREAKER_TIMEOUTS:
            self._suppressed_until = now + BREAKER_WINDOW
