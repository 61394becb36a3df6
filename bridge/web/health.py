"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy import text

from bridge.web.keys import ENGINE, READINESS_CHECKS


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(2):
            async with request.app[ENGINE].connect() as conn:
                await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready", reported by name
        checks["database"] = f"down: {type(exc).__name__}"
    for name, check in request.app.get(READINESS_CHECKS, {}).items():
        checks[name] = await check()
    ready = all(v == "ok" or v.startswith("ok") for v in checks.values())
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
