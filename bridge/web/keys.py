"""Typed application state keys shared by the web routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

ENGINE = web.AppKey("engine", AsyncEngine)
# name → coroutine answering "ok…" or a reason; filled by the components that start
READINESS_CHECKS = web.AppKey("readiness_checks", dict[str, Callable[[], Awaitable[str]]])
BRIDGE = web.AppKey("bridge", Any)
