"""Background tasks that never die silently (the habit mautrix taught us)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("bridge.tasks")
_running: set[asyncio.Task[Any]] = set()


def create(
    coro: Coroutine[Any, Any, Any], *, name: str | None = None, catch_errors: bool = True
) -> asyncio.Task[Any]:
    """Create a background task, keep a reference until it completes, log its errors."""
    task = asyncio.create_task(coro, name=name)
    _running.add(task)

    def _done(t: asyncio.Task[Any]) -> None:
        _running.discard(t)
        if catch_errors and not t.cancelled() and t.exception() is not None:
            log.error("background task %s failed", t.get_name(), exc_info=t.exception())

    task.add_done_callback(_done)
    return task


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    live = [t for t in tasks if t is not None and not t.done()]
    for task in live:
        task.cancel()
    if live:
        await asyncio.gather(*live, return_exceptions=True)
