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
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy import text

from bridge import tasks
from bridge.udesk import errors
from bridge.udesk.budget import Priority
from bridge.udesk.client import UdeskClient
from bridge.udesk.wire import AgentStatusAnswer
from bridge.web.keys import ENGINE, READINESS_CHECKS

log = logging.getLogger("bridge.health")

DATABASE_TIMEOUT = 2.0
CHECK_TIMEOUT = 2.0


class Degraded(str):
    """A readiness result worth reporting that does not make the bridge unready."""

    __slots__ = ()


def is_ok(result: str) -> bool:
    return result.startswith("ok")


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


# --- Udesk credentials -----------------------------------------------------------------


class UdeskCredentialsCheck:
    """One cheap signed call (``GET /im/agent_status``) when the server starts, cached.

    "ok" stays; anything else is tried again at most every ``recheck_after`` seconds, when
    a probe asks.  A failure never stops the daemon: it is logged and reported here.
    """

    def __init__(
        self, client: UdeskClient, *, timeout: float = 5.0, recheck_after: float = 30.0
    ) -> None:
        self.client = client
        self.timeout = timeout
        self.recheck_after = recheck_after
        self.result: str | None = None
        self._checked_at = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = tasks.create(self._check(), name="udesk-credentials-check")

    async def close(self) -> None:
        await tasks.cancel_and_wait(self._task)

    async def _check(self) -> None:
        result = await self.probe()
        if result != self.result:
            if is_ok(result):
                log.info("Udesk credentials: %s", result)
            elif isinstance(result, Degraded):
                log.warning("Udesk credentials not verified: %s", result)
            else:
                log.error(
                    "Udesk refused the credentials: %s; check UDESK_EMAIL and UDESK_API_TOKEN",
                    result,
                )
        self.result = result
        self._checked_at = time.monotonic()

    async def probe(self) -> str:
        try:
            async with asyncio.timeout(self.timeout):
                await self.client.request(
                    "GET",
                    "/im/agent_status",
                    AgentStatusAnswer,
                    priority=Priority.POLL,
                    max_attempts=1,
                )
        except errors.UdeskBadSignature as exc:
            if exc.code == errors.CODE_BAD_SIGNATURE:
                return f"invalid credentials ({exc.code})"
            return Degraded(f"signature refused ({exc.code}): is the clock right?")
        except errors.UdeskQuotaExceeded:
            return Degraded("not verified: Udesk quota exceeded")
        except errors.UdeskUnexpectedAnswer as exc:
            # A code means Udesk itself signed off on the signature; none, a proxy's page.
            if exc.code is not None:
                return f"ok (answered code {exc.code})"
            return Degraded(f"unexpected answer: {exc}")
        except (errors.UdeskTransientError, TimeoutError, OSError):
            return Degraded("unreachable")
        except errors.UdeskError as exc:
            # Signed and answered with some other code: the credentials were accepted.
            if exc.code is not None:
                return f"ok (answered code {exc.code})"
            return Degraded(f"unexpected answer: {type(exc).__name__}")
        except Exception as exc:  # never let the check itself break
            log.warning("Udesk credentials check failed", exc_info=True)
            return Degraded(f"check failed: {type(exc).__name__}")
        return "ok"

    async def __call__(self) -> str:
        stale = self.result is None or (
            not is_ok(self.result) and time.monotonic() - self._checked_at > self.recheck_after
        )
        if stale:
            self.start()
        if self._task is not None and not self._task.done():
            await asyncio.wait({self._task}, timeout=1.0)
        return self.result if self.result is not None else Degraded("checking")


# --- Telegram webhook ------------------------------------------------------------------

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


def add_component_checks(
    app: web.Application,
    *,
    udesk: UdeskClient,
    bot: Any | None = None,
    webhook_url: str | None = None,
) -> None:
    """Readiness of the running bridge's neighbours: Udesk always, Telegram in webhook mode
    (``bot`` given).  The Udesk check starts with the web server and stops with it."""
    credentials = UdeskCredentialsCheck(udesk)
    app[READINESS_CHECKS]["udesk"] = credentials
    closers = [credentials.close]
    if bot is not None and webhook_url is not None:
        webhook = TelegramWebhookCheck(bot, webhook_url)
        app[READINESS_CHECKS]["telegram_webhook"] = webhook
        closers.append(webhook.close)

    async def on_startup(_app: web.Application) -> None:
        credentials.start()

    async def on_cleanup(_app: web.Application) -> None:
        for close in closers:
            await close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
