"""Liveness and readiness.

``GET /healthz`` answers 200 while the process runs.  ``GET /readyz`` runs every readiness
check at once and answers ``{"status", "checks": {name: result}, "down": [...],
"degraded": [...]}``:

- a result starting with ``ok`` is fine;
- a ``Degraded`` result is reported (listed under ``degraded``) but keeps the answer 200:
  Udesk unreachable, Telegram's webhook reporting delivery errors: restarting or removing
  this replica would not help;
- anything else is down and makes the answer 503: the database not answering, Udesk
  refusing the credentials (code 1001).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from sqlalchemy import text

from bridge.readiness import Degraded, is_ok
from bridge.web.keys import ENGINE, READINESS_CHECKS

log = logging.getLogger("bridge.health")

DATABASE_TIMEOUT = 2.0
CHECK_TIMEOUT = 2.0


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _database(request: web.Request) -> str:
    try:
        async with asyncio.timeout(DATABASE_TIMEOUT):
            async with request.app[ENGINE].connect() as conn:
                await conn.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # any failure means "not ready", reported by name
        return f"down: {type(exc).__name__}"


async def _run(check: Callable[[], Awaitable[str]]) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            return await check()
    except TimeoutError:
        return Degraded("check timed out")
    except Exception as exc:  # a broken check is reported, not fatal
        log.exception("readiness check failed")
        return Degraded(f"check failed: {type(exc).__name__}")


async def readyz(request: web.Request) -> web.Response:
    registered = request.app[READINESS_CHECKS]  # set by create_web_app
    named = dict(registered)  # a snapshot
    results = await asyncio.gather(_database(request), *(_run(c) for c in named.values()))
    checks: dict[str, str] = {"database": results[0]}
    checks.update(zip(named, results[1:], strict=True))
    degraded = [name for name, value in checks.items() if isinstance(value, Degraded)]
    down = [
        name
        for name, value in checks.items()
        if not is_ok(value) and not isinstance(value, Degraded)
    ]
    return web.json_response(
        {
            "status": "not ready" if down else "ready",
            "checks": checks,
            "down": down,
            "degraded": degraded,
        },
        status=503 if down else 200,
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)


def add_component_checks(
    app: web.Application, checks: Mapping[str, Callable[[], Awaitable[str]]]
) -> None:
    """Readiness of the running bridge's neighbours, as the edges define them (e.g.
    ``udesk`` and ``telegram_webhook``): each is called by ``/readyz``; one with a
    ``start()`` is started with the web server, one with a ``close()`` closed with it."""
    app[READINESS_CHECKS].update(checks)

    async def on_startup(_app: web.Application) -> None:
        for check in checks.values():
            start = getattr(check, "start", None)
            if start is not None:
                start()

    async def on_cleanup(_app: web.Application) -> None:
        for check in checks.values():
            close = getattr(check, "close", None)
            if close is not None:
                await close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
