"""Background tasks that never die silently (the habit mautrix taught us).

``create`` is for a task that ends on its own (a health probe, a group commit's writer).
A loop that must run as long as the process does (the Telegram poller, the dispatchers and
their lease renewal, LISTEN, the periodic jobs) is started by ``Supervisor.run`` instead:
restarted after a crash, reported by ``/readyz`` while it is down, and, when restarting
cannot help (``Unrecoverable``), the end of the process with one line saying why.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
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


class Unrecoverable(Exception):
    """Raised by a supervised loop when running it again cannot help (the bot token was
    revoked, another process took the poller lock): the process stops.  The message is the
    line the operator reads; ``exit_code`` is the process's (1: fix the configuration)."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


ReadinessChecks = dict[str, Callable[[], Awaitable[str]]]


class Supervisor:
    """Runs the long-lived loops, each started again after a crash.

    The wait before a restart doubles from ``base`` up to ``cap`` seconds (with jitter, so
    replicas do not restart in step) and starts over once a run lasted ``cap`` seconds.
    """

    def __init__(self, *, base: float = 0.5, cap: float = 30.0) -> None:
        self.base = base
        self.cap = cap
        self.failure: Unrecoverable | None = None
        # Set on the first Unrecoverable; the lifecycle owner stops the process then.
        self.failed = asyncio.Event()
        self._down: dict[str, str] = {}  # name → why, while it waits to be restarted
        self._names: list[str] = []
        self._checks: ReadinessChecks | None = None

    def run(self, name: str, loop: Callable[[], Coroutine[Any, Any, Any]]) -> asyncio.Task[None]:
        """Start ``loop()`` as the task ``name``; a loop that returns is done for good."""
        self._names.append(name)
        if self._checks is not None:
            self._checks[name] = self._check(name)
        return create(self._keep(name, loop), name=name)

    def report_to(self, checks: ReadinessChecks) -> None:
        """Give each supervised loop, now and later, a readiness check of its own name."""
        self._checks = checks
        for name in self._names:
            checks[name] = self._check(name)

    def _check(self, name: str) -> Callable[[], Awaitable[str]]:
        async def check() -> str:
            why = self._down.get(name)
            return "ok" if why is None else f"{name} down: {why}"

        return check

    async def _keep(self, name: str, loop: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        clock = asyncio.get_running_loop().time
        failures = 0
        while True:
            started = clock()
            try:
                await loop()
                return
            except asyncio.CancelledError:
                raise
            except Unrecoverable as exc:
                self._down[name] = str(exc)
                self._fail(exc)
                return
            except Exception as exc:
                failures = 1 if clock() - started >= self.cap else failures + 1
                delay = self._delay(failures)
                self._down[name] = f"restarting after {type(exc).__name__}"
                log.error(
                    "%s failed (%s); restarting in %.1fs",
                    name,
                    type(exc).__name__,
                    delay,
                    exc_info=exc,
                )
            await asyncio.sleep(delay)
            del self._down[name]
            log.info("%s restarted", name)

    def _delay(self, failures: int) -> float:
        ceiling = min(self.cap, self.base * 2 ** (failures - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _fail(self, exc: Unrecoverable) -> None:
        if self.failure is None:  # the first reason is the one worth reading
            self.failure = exc
            log.critical("%s; stopping", exc)
        self.failed.set()
