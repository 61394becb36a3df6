"""Readiness of Udesk as the bridge sees it: are the credentials accepted?"""

from __future__ import annotations

import asyncio
import logging
import time

from bridge import tasks
from bridge.readiness import Degraded, is_ok
from bridge.udesk import errors
from bridge.udesk.budget import Priority
from bridge.udesk.client import UdeskClient
from bridge.udesk.wire import AgentStatusAnswer

log = logging.getLogger("bridge.health")


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
