"""Readiness of Telegram's side in webhook mode: does Telegram deliver to us?"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

from bridge import tasks
from bridge.readiness import Degraded

RECENT_WEBHOOK_ERROR = 600.0  # seconds; older errors are mentioned, not flagged


class TelegramWebhookCheck:
    """``getWebhookInfo`` in webhook mode, cached for ``ttl`` seconds."""

    def __init__(
        self, bot: Any, expected_url: str, *, ttl: float = 30.0, timeout: float = 1.5
    ) -> None:
        self.bot = bot  # telegram.Bot
        self.expected_url = expected_url
        self.ttl = ttl
        self.timeout = timeout
        self.result: str | None = None
        self._fetched_at = 0.0
        self._task: asyncio.Task[None] | None = None

    async def close(self) -> None:
        await tasks.cancel_and_wait(self._task)

    async def _refresh(self) -> None:
        try:
            async with asyncio.timeout(5.0):
                info = await self.bot.get_webhook_info()
            self.result = self.describe(info)
        except Exception as exc:  # Telegram unreachable: reported, never fatal
            self.result = Degraded(f"getWebhookInfo failed: {type(exc).__name__}")
        self._fetched_at = time.monotonic()

    def describe(self, info: Any) -> str:
        pending = f"pending_update_count={info.pending_update_count}"
        if info.url != self.expected_url:
            where = "not set" if not info.url else "set to another URL"
            return Degraded(f"webhook {where}; {pending}")
        error = ""
        recent = False
        if info.last_error_message:
            when = info.last_error_date
            age = (dt.datetime.now(dt.UTC) - when).total_seconds() if when else None
            recent = age is None or age < RECENT_WEBHOOK_ERROR
            ago = f"{age:.0f}s ago" if age is not None else "at an unknown time"
            error = f"; last_error_message={info.last_error_message!r} ({ago})"
        if recent:
            return Degraded(f"delivery errors; {pending}{error}")
        return f"ok ({pending}{error})"

    async def __call__(self) -> str:
        if self.result is not None and time.monotonic() - self._fetched_at < self.ttl:
            return self.result
        if self._task is None or self._task.done():
            self._task = tasks.create(self._refresh(), name="telegram-webhook-check")
        await asyncio.wait({self._task}, timeout=self.timeout)
        return self.result if self.result is not None else Degraded("checking")
