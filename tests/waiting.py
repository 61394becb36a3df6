"""Waiting for what a test expects, the one way every suite does it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


@overload
async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    timeout: float = ...,
    what: str = ...,
    interval: float = ...,
) -> T: ...
@overload
async def eventually(
    probe: Callable[[], T], *, timeout: float = ..., what: str = ..., interval: float = ...
) -> T: ...
async def eventually(
    probe: Callable[[], Any], *, timeout: float = 10.0, what: str = "", interval: float = 0.05
) -> Any:
    """Poll ``probe`` (sync or async) until it returns something truthy, and return that;
    AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what or probe}")
        await asyncio.sleep(interval)
