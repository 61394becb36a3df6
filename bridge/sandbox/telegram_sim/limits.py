"""Telegram's flood limits, simplified so that tests can predict them.

Real Telegram allows short bursts and tunes limits per bot; a simulator that did the same
would make tests flaky. Here the rules are exact: a second message to the same chat within
``per_chat_interval`` seconds is refused, more than ``global_per_second`` messages in any
sliding second are refused, and groups get ``group_per_minute`` messages per minute. Sends
are always counted (even with enforcement off) so tests can assert the bridge's own pacing.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        *,
        per_chat_interval: float = 1.0,
        global_per_second: int = 30,
        group_per_minute: int = 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = False
        self.per_chat_interval = per_chat_interval
        self.global_per_second = global_per_second
        self.group_per_minute = group_per_minute
        self.clock = clock
        self._last_by_chat: dict[int, float] = {}
        self._recent: deque[float] = deque()  # accepted sends in the last second
        self._group_recent: dict[int, deque[float]] = defaultdict(deque)
        self.sent_times: list[tuple[float, int]] = []  # (wall time, chat_id) of every send
        self.refused = 0

    def reset(self) -> None:
        self._last_by_chat.clear()
        self._recent.clear()
        self._group_recent.clear()
        self.sent_times.clear()
        self.refused = 0

    def check(self, chat_id: int, messages: int = 1) -> int | None:
        """Seconds to wait before ``messages`` more sends to chat_id are allowed, or None."""
        if not self.enabled:
            return None
        now = self.clock()
        while self._recent and now - self._recent[0] >= 1.0:
            self._recent.popleft()
        waits: list[float] = []
        last = self._last_by_chat.get(chat_id)
        if last is not None and now - last < self.per_chat_interval:
            waits.append(self.per_chat_interval - (now - last))
        if len(self._recent) + messages > self.global_per_second:
            waits.append(1.0 - (now - self._recent[0]) if self._recent else 1.0)
        if chat_id < 0:
            window = self._group_recent[chat_id]
            while window and now - window[0] >= 60.0:
                window.popleft()
            if len(window) + messages > self.group_per_minute:
                waits.append(60.0 - (now - window[0]) if window else 60.0)
        if not waits:
            return None
        self.refused += 1
        return max(1, math.ceil(max(waits)))

    def record(self, chat_id: int, messages: int = 1) -> None:
        now = self.clock()
        wall = time.time()
        self._last_by_chat[chat_id] = now
        for _ in range(messages):
            self._recent.append(now)
            if chat_id < 0:
                self._group_recent[chat_id].append(now)
            self.sent_times.append((wall, chat_id))

    def per_second(self, chat_id: int | None = None) -> dict[int, int]:
        """Messages sent per wall-clock second (epoch second -> count)."""
        counts: dict[int, int] = defaultdict(int)
        for wall, chat in self.sent_times:
            if chat_id is None or chat == chat_id:
                counts[int(wall)] += 1
        return dict(counts)

    def max_in_window(self, window: float = 1.0, chat_id: int | None = None) -> int:
        """Largest number of sends inside any sliding ``window`` seconds."""
        times = sorted(w for w, chat in self.sent_times if chat_id is None or chat == chat_id)
        best = 0
        start = 0
        for end, moment in enumerate(times):
            while moment - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best
