"""The one owner of the daemon's lifecycle: what starts, in which order, and how it stops.

Start: settings → migrations → database → web server → components (Udesk client, Telegram,
dispatchers).  Stop (SIGTERM/SIGINT): components in reverse (stop taking work, finish or
release claimed records), then the web server, then the database; bounded in time.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge import tasks
from bridge.logs import remember_secrets
from bridge.parts import Parts, build_parts
from bridge.settings import Settings
from bridge.store import migrate
from bridge.store.db import create_engine
from bridge.store.exclusive import SqliteLock
from bridge.web.server import HTTP_LOG, create_web_app

log = logging.getLogger("bridge.app")

StopFn = Callable[[], Awaitable[None]]


@dataclass
class Lifecycle:
    """Stop callbacks registered as parts start; run in reverse order at shutdown."""

    stops: list[tuple[str, StopFn]] = field(default_factory=list)

    def on_stop(self, name: str, fn: StopFn) -> None:
        self.stops.append((name, fn))

    async def stop_all(self, timeout: float) -> None:
        for name, fn in reversed(self.stops):
            try:
                async with asyncio.timeout(timeout):
                    await fn()
            except TimeoutError:
                log.warning("stopping %s took longer than %.0fs; moving on", name, timeout)
            except Exception:
                log.exception("error while stopping %s", name)
        self.stops.clear()


def _async(fn: Callable[[], None]) -> StopFn:
    async def run() -> None:
        fn()

    return run


class BridgeApp:
    """The running daemon.  ``start`` returns once everything listens; ``stop`` undoes it."""

    def __init__(self, settings: Settings, *, run_migrations: bool = True) -> None:
        self.settings = settings
        self.run_migrations = run_migrations
        self.lifecycle = Lifecycle()
        self.engine: AsyncEngine | None = None
        self.web_app: web.Application | None = None
        self.port: int | None = None
        self.parts: Parts | None = None

    async def start(self) -> None:
        settings = self.settings
        # Error text the bridge keeps or answers with is redacted like its log, whether or
        # not logging was set up by the CLI (tests and the sandbox start here).
        remember_secrets(settings.secrets())
        url = settings.database_url.get_secret_value()
        if self.run_migrations:
            # alembic's env.py runs its own event loop, so it gets a thread of its own.
            await asyncio.to_thread(migrate.upgrade, url)
        if settings.is_sqlite:
            sqlite_lock = SqliteLock(url)
            sqlite_lock.acquire()
            self.lifecycle.on_stop("sqlite lock", _async(sqlite_lock.release))
        self.engine = create_engine(url, pool_size=settings.database_pool_size)
        self.lifecycle.on_stop("database", self.engine.dispose)

        self.parts = parts = await build_parts(settings, self.engine, self.lifecycle)
        self.web_app = create_web_app(self.engine)
        parts.add_routes(self.web_app)
        runner = web.AppRunner(self.web_app, access_log=None, shutdown_timeout=5, logger=HTTP_LOG)
        await runner.setup()
        site = web.TCPSite(runner, settings.bridge_host, settings.bridge_port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []  # the real port when 0 was asked
        self.port = sockets[0].getsockname()[1] if sockets else settings.bridge_port
        log.info("listening on %s:%s", settings.bridge_host, self.port)
        # Stopping the web server first stops new pushes and updates coming in.
        await parts.start_work(self.lifecycle)
        self.lifecycle.on_stop("web server", runner.cleanup)

    async def stop(self, timeout: float = 20.0) -> None:
        await self.lifecycle.stop_all(timeout)


def dump_tasks() -> None:
    """SIGUSR1: log where every task is waiting, for an operator chasing a stuck bridge."""
    for task in asyncio.all_tasks():
        chain = []
        awaited: Any = task.get_coro()
        while awaited is not None and len(chain) < 30:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is not None:
                chain.append(f"{frame.f_code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno}")
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
        log.warning("task %s: %s", task.get_name(), " -> ".join(chain) or "(running)")


async def run_until_signalled(settings: Settings, *, run_migrations: bool = True) -> int:
    """``udesk-bridge run``: start, wait for SIGTERM/SIGINT, stop cleanly, exit 0; or stop
    when a supervised loop cannot go on (``tasks.Unrecoverable``) and exit with its code."""
    app = BridgeApp(settings, run_migrations=run_migrations)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def reload_routing() -> None:
        # SIGHUP reloads the routing file (a broken one is refused; see bridge.admin.reload).
        # Installed before start: a reload sent while starting must not kill the process
        # (SIGHUP's default action), it just finds nothing to reload yet.
        if app.parts is not None:
            app.parts.reload_routing("SIGHUP")
        else:
            log.info("SIGHUP while starting: the routing file is read at start anyway")

    loop.add_signal_handler(signal.SIGHUP, reload_routing)
    loop.add_signal_handler(signal.SIGUSR1, dump_tasks)
    failure = None
    try:
        await app.start()
        log.info("bridge started")
        assert app.parts is not None
        supervisor = app.parts.supervisor
        signalled = asyncio.create_task(stop.wait())
        failed = asyncio.create_task(supervisor.failed.wait())
        await asyncio.wait({signalled, failed}, return_when=asyncio.FIRST_COMPLETED)
        await tasks.cancel_and_wait(signalled, failed)
        failure = supervisor.failure  # already logged, in one line, by the supervisor
        log.info("stopping")
    finally:
        await app.stop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            loop.remove_signal_handler(sig)
    log.info("stopped")
    return failure.exit_code if failure is not None else 0
