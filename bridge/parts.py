"""Everything the daemon runs, built from the settings and wired together.

``build_parts`` creates the pieces (clients, PTB, queues, handlers); ``Parts.add_routes``
hangs the endpoints on the web app; ``Parts.start_work`` starts dispatchers, the poller and
periodic jobs.  Each piece registers its stop on the lifecycle as it starts, so shutdown
runs in reverse: intake first, then dispatchers (finishing or releasing claimed records),
then PTB, the HTTP client and the database.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from telegram.error import InvalidToken, TelegramError
from telegram.ext import AIORateLimiter, Application

from bridge import tasks
from bridge.admin.operations import AdminOps
from bridge.admin.reload import reload_routing
from bridge.core import intake, routing_file
from bridge.core.previews import PreviewSender
from bridge.core.routing import Router, RoutingFileError
from bridge.core.texts import Texts
from bridge.core.tickets import TicketDesk
from bridge.core.to_telegram import ToTelegram
from bridge.core.to_udesk import ToUdesk, ToUdeskConfig
from bridge.core.watchers import Watchers
from bridge.privacy.erase import Eraser
from bridge.privacy.forget import ForgetHandler
from bridge.settings import Settings, SettingsError
from bridge.store import customers as customer_repo
from bridge.store.db import asyncpg_dsn, is_postgres, read_session_factory
from bridge.store.dispatcher import Dispatcher, by_kind
from bridge.store.exclusive import PollerLock
from bridge.store.leader import LeaderLock
from bridge.store.media import MediaStore
from bridge.store.notify import TO_TELEGRAM, TO_UDESK, UPDATES, Waker, waking_sessions
from bridge.store.presence import Presence
from bridge.store.queue import DurableQueue
from bridge.store.retention import Purger, Retention
from bridge.store.tables import InboundMessage, OutboundMessage, TelegramUpdate
from bridge.telegram.gateway import TelegramSender
from bridge.telegram.intake import (
    TOKEN_REFUSED,
    Poller,
    UpdateProcessor,
    webhook_handler,
)
from bridge.telegram.ratelimit import WindowRateLimiter
from bridge.telegram.request import AiohttpRequest
from bridge.telegram.translate import Translation
from bridge.udesk.budget import RateBudget
from bridge.udesk.client import UdeskClient
from bridge.udesk.gateway import UdeskGateway
from bridge.udesk.push_route import push_handler
from bridge.web.admin import AdminApi
from bridge.web.keys import READINESS_CHECKS
from bridge.web.media import media_handler

if TYPE_CHECKING:
    from bridge.app import Lifecycle

log = logging.getLogger("bridge.parts")

LEADER_LOCK_KEY = 0x75646B63
# Records handled at once per queue and process.  Inbound matches the bot's HTTP pool (a
# send beyond it would only wait for a connection); outbound waits on Udesk, which is slower.
CONCURRENCY = {"updates": 32, "outbound": 64, "inbound": 32}


@dataclass
class Parts:
    settings: Settings
    engine: AsyncEngine
    waker: Waker
    sessions: async_sessionmaker[AsyncSession]
    router: Router
    ptb: Application[Any, Any, Any, Any, Any, Any]
    media: MediaStore
    udesk: UdeskGateway
    budget: RateBudget
    sender: TelegramSender
    queues: dict[str, DurableQueue]
    handlers: dict[str, Any]
    prefetchers: dict[str, Any]  # per queue: reads a claimed batch's needs (Dispatcher)
    watchers: Watchers
    leader: LeaderLock
    presence: Presence | None = None  # PostgreSQL workers only
    poller_lock: PollerLock | None = None
    update_processor: UpdateProcessor | None = None
    dispatchers: list[Dispatcher] = field(default_factory=list)
    # Keeps every long-running loop running; /readyz names the ones that are down.
    supervisor: tasks.Supervisor = field(default_factory=tasks.Supervisor)

    def texts(self) -> Texts:
        return self.router.texts

    def reload_routing(self, trigger: str = "admin") -> list[str]:
        """Re-read ROUTING_FILE and swap it in atomically; returns the problems (empty when
        reloaded).  A broken file is refused and the rules in force stay."""
        return reload_routing(self.router, trigger=trigger)

    def _add_admin_routes(self, app: web.Application) -> None:
        token = self.settings.admin_token
        if token is None or not token.get_secret_value():
            return  # the admin API is off: /admin/* answers 404
        ops = AdminOps(self.sessions, self.udesk, self.texts, media_dir=self.settings.media_dir)
        api = AdminApi(token.get_secret_value(), ops, self.router, self.reload_routing)
        api.add_routes(app)

    def _add_observability(self, app: web.Application) -> None:
        from bridge.telegram.readiness import TelegramWebhookCheck
        from bridge.udesk.budget_metrics import BudgetCollector
        from bridge.udesk.readiness import UdeskCredentialsCheck
        from bridge.web import health, metrics_route

        s = self.settings
        metrics_route.watch(app, BudgetCollector(self.budget))
        checks: dict[str, Any] = {"udesk": UdeskCredentialsCheck(self.udesk.client)}
        if s.telegram_mode == "webhook":
            webhook = f"{s.public_url}/telegram/webhook"
            checks["telegram_webhook"] = TelegramWebhookCheck(self.ptb.bot, webhook)
        health.add_component_checks(app, checks)

    def add_routes(self, app: web.Application) -> None:
        s = self.settings
        sessions = self.sessions
        secret = s.udesk_push_secret.get_secret_value()
        app.router.add_post("/udesk/push/{secret}", push_handler(sessions, self.texts, secret))
        app.router.add_get("/media/{token}", media_handler(self.media))
        if s.telegram_mode == "webhook" and s.telegram_webhook_secret is not None:
            app.router.add_post(
                "/telegram/webhook",
                webhook_handler(
                    sessions,
                    s.telegram_webhook_secret.get_secret_value(),
                    self.update_processor,
                ),
            )
        app[READINESS_CHECKS]["udesk_budget"] = self._budget_check
        self.supervisor.report_to(app[READINESS_CHECKS])
        self._add_observability(app)
        self._add_admin_routes(app)
        self._add_identity_routes(app)

    def _add_identity_routes(self, app: web.Application) -> None:
        from bridge.udesk.customer_token_route import customer_token_handler
        from bridge.udesk.field_push_route import field_push_handler

        secret = self.settings.udesk_push_secret.get_secret_value()
        region = self.settings.phone_default_region
        app.router.add_post(
            "/udesk/customer-token/{secret}",
            customer_token_handler(self.sessions, secret, region),
        )
        app.router.add_post(
            "/udesk/field-push/{secret}", field_push_handler(self.sessions, secret, region)
        )

    async def _budget_check(self) -> str:
        available = self.budget.tokens_available()
        return "ok" if available is None else f"ok ({available} calls left this window)"

    async def start_work(self, lifecycle: Lifecycle) -> None:
        s = self.settings
        background: list[asyncio.Task[Any]] = []
        if s.bridge_role != "intake":
            background += await self._start_sending(lifecycle)
        if is_postgres(self.engine):
            dsn = asyncpg_dsn(s.database_url.get_secret_value())
            background.append(self.supervisor.run("listen", lambda: self.waker.keep_listening(dsn)))
        if s.bridge_role != "worker":
            background += await self._start_intake()

        async def stop_background() -> None:
            await tasks.cancel_and_wait(*background)
            await self.leader.release()

        lifecycle.on_stop("intake and periodic jobs", stop_background)

    async def _start_sending(self, lifecycle: Lifecycle) -> list[asyncio.Task[Any]]:
        """The dispatchers and the periodic jobs (BRIDGE_ROLE all or worker)."""
        s = self.settings
        channels = {"updates": UPDATES, "outbound": TO_UDESK, "inbound": TO_TELEGRAM}
        for name, queue in self.queues.items():
            # Whatever a dead predecessor held goes back in line now: on SQLite everything
            # (one process only), on PostgreSQL what no present worker holds.
            await queue.recover_expired(everything=not is_postgres(self.engine))
            dispatcher = Dispatcher(
                queue,
                self.handlers[name],
                waker=self.waker,
                channel=channels[name],
                concurrency=CONCURRENCY[name],
                poll_interval=2.0,
                prefetch=self.prefetchers.get(name),
            )
            dispatcher.on_recovered = self.watchers.nudge_catch_up
            dispatcher.start(self.supervisor)
            self.dispatchers.append(dispatcher)
            lifecycle.on_stop(f"{name} dispatcher", dispatcher.stop)

        run = self.supervisor.run
        background = [
            run("queue polls", self.watchers.run_queue_polls),
            run("catch-up", self.watchers.run_catch_up),
            run("ticket polls", self.watchers.run_ticket_polls),
        ]
        if self.presence is not None:
            background.append(self.supervisor.run("database presence", self.presence.keep))
        if s.purge_interval > 0:  # the retention purge, leader only; PURGE_INTERVAL=0: off
            purger = Purger(
                self.sessions,
                Retention.from_settings(s),
                leader=self.leader.is_leader,
                interval=s.purge_interval,
            )
            background.append(run("purge", purger.run))
        return background

    async def _start_intake(self) -> list[asyncio.Task[Any]]:
        """Telegram updates in: the getUpdates loop, or the webhook registered with Telegram
        (BRIDGE_ROLE all or intake; pushes are answered by every process's web server)."""
        s = self.settings
        if s.telegram_mode == "polling":
            poller = Poller(
                self.ptb, self.sessions, lock=self.poller_lock, processor=self.update_processor
            )
            return [self.supervisor.run("telegram intake", poller.run)]
        await self.ptb.bot.set_webhook(
            url=f"{s.public_url}/telegram/webhook",
            secret_token=s.telegram_webhook_secret.get_secret_value()
            if s.telegram_webhook_secret
            else None,
            allowed_updates=["message", "edited_message", "callback_query", "my_chat_member"],
        )
        return []


def _rate_limiter(s: Settings) -> AIORateLimiter | None:
    """PTB's limiter for the bot as a whole, its overall limit kept over a sliding window
    as Telegram counts it (bridge.telegram.ratelimit).  max_retries=0: a 429 goes back to
    the dispatcher, which retries that chat's record after retry_after without pausing
    every other chat (AIORateLimiter's own retry pauses them all)."""
    rate = s.telegram_rate_limit
    if rate.unlimited:
        return None
    return WindowRateLimiter(rate.calls, rate.per_seconds)


async def _start_ptb(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Initialise PTB (it calls getMe); Telegram may be briefly unreachable at boot, but a
    refused token stays refused: that stops the start at once, with one line."""
    for attempt in range(1, 6):
        try:
            await app.initialize()
            await app.start()
            return
        except InvalidToken:
            raise SettingsError([TOKEN_REFUSED]) from None
        except TelegramError as exc:
            if attempt == 5:
                raise
            log.warning("Telegram not reachable at start (%s); retrying", exc)
            await asyncio.sleep(attempt)


def load_router(settings: Settings) -> Router:
    """The router from ROUTING_FILE (the built-in default without it); a broken file is a
    SettingsError listing every problem with file and line."""
    if settings.routing_file is None:
        return Router()
    try:
        router = routing_file.load_router(settings.routing_file)
    except RoutingFileError as exc:
        raise SettingsError([f"ROUTING_FILE: {p}" for p in exc.problems]) from None
    log.info("routing from %s: %d rules", settings.routing_file, len(router.rules))
    return router


async def build_parts(settings: Settings, engine: AsyncEngine, lifecycle: Lifecycle) -> Parts:
    s = settings
    router = load_router(s)  # first: a broken routing file stops the start, nothing to undo
    poller_lock = None
    if s.telegram_mode == "polling" and s.bridge_role != "worker":  # a worker never polls
        # Before anything listens: a second poller is refused with a clear message.
        poller_lock = PollerLock(engine)
        await poller_lock.acquire()
        lifecycle.on_stop("poller lock", poller_lock.release)
    # At most 63 ASCII bytes: it is also this process's name in pg_stat_activity.
    host = socket.gethostname().encode("ascii", "replace").decode()[:40]
    worker_id = f"{host}-{os.getpid()}-{secrets.token_hex(3)}"
    presence = None
    if is_postgres(engine) and s.bridge_role != "intake":
        # Before any claim: a claim whose worker is not present is taken over at once.
        presence = Presence(asyncpg_dsn(s.database_url.get_secret_value()), worker_id)
        await presence.connect()
        lifecycle.on_stop("presence", presence.close)

    waker = Waker([UPDATES, TO_UDESK, TO_TELEGRAM])
    sessions = waking_sessions(engine, waker)
    reads = read_session_factory(engine)
    if is_postgres(engine):
        await waker.listen(asyncpg_dsn(s.database_url.get_secret_value()))
    lifecycle.on_stop("notifications", waker.close)

    http = aiohttp.ClientSession()
    lifecycle.on_stop("http client", http.close)

    rate = s.udesk_rate_limit
    budget = RateBudget(None if rate.unlimited else rate.calls, rate.per_seconds)
    client = UdeskClient(
        s.udesk_api_url,
        s.udesk_email,
        s.udesk_api_token.get_secret_value(),
        session=http,
        budget=budget,
        timeout=s.udesk_timeout,
    )
    udesk = UdeskGateway(client)

    api = s.telegram_api_url
    # aiohttp under PTB (bridge.telegram.request); 32 connections cover the inbound
    # dispatcher's concurrency, a send beyond them waits for a free one.
    requests = (
        AiohttpRequest(connection_pool_size=CONCURRENCY["inbound"]),
        AiohttpRequest(connection_pool_size=1),  # getUpdates, one at a time
    )
    ptb = (
        Application.builder()
        .token(s.telegram_bot_token.get_secret_value())
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .rate_limiter(_rate_limiter(s))
        .request(requests[0])
        .get_updates_request(requests[1])
        .updater(None)
        .concurrent_updates(False)
        .build()
    )

    async def stop_ptb() -> None:
        if ptb.running:
            await ptb.stop()
        await ptb.shutdown()
        # A start that failed (the token refused) leaves PTB uninitialised, which its
        # shutdown skips, with the HTTP sessions already open.
        for request in requests:
            await request.shutdown()

    lifecycle.on_stop("telegram", stop_ptb)
    await _start_ptb(ptb)

    media = MediaStore(sessions, s.media_dir, ttl_seconds=s.media_ttl, public_url=str(s.public_url))
    chat_rate = s.telegram_chat_rate_limit
    sender = TelegramSender(
        ptb.bot,
        http,
        max_media_bytes=s.max_media_bytes,
        allow_private_urls=s.allow_private_media_urls,
        chat_period=0.0 if chat_rate.unlimited else chat_rate.per_seconds / chat_rate.calls,
    )
    previews = PreviewSender(udesk)
    lifecycle.on_stop("previews", previews.close)

    lease = s.queue_lease
    queues = {
        "updates": DurableQueue(sessions, TelegramUpdate, worker_id=worker_id, lease_seconds=lease),
        "outbound": DurableQueue(
            sessions,
            OutboundMessage,
            worker_id=worker_id,
            lease_seconds=lease,
            extra_columns=("customer_id",),
        ),
        "inbound": DurableQueue(
            sessions,
            InboundMessage,
            worker_id=worker_id,
            lease_seconds=lease,
            extra_columns=("customer_id", "chat_id"),
            looked_up=customer_repo.RECIPIENT_LOOKUPS,
        ),
    }
    tickets = TicketDesk(sessions, udesk, lambda: router.texts)
    outbound = ToUdesk(
        sessions,
        udesk,
        sender,
        router,
        media,
        previews,
        tickets,
        ToUdeskConfig(delivery_deadline=s.delivery_deadline, max_media_bytes=s.max_media_bytes),
        reads=reads,
    )
    inbound = ToTelegram(sessions, sender, delivery_deadline=s.delivery_deadline, reads=reads)
    updates = UpdateProcessor(
        ptb,
        Translation(bot_username=ptb.bot.username, forget_command=s.forget_command),
        sessions,
        queues["updates"],
        lambda: router.texts,
        album_debounce=s.album_debounce,
        identity=intake.Identity(
            phone_region=s.phone_default_region,
            deeplink_secret=s.deeplink_secret.get_secret_value() if s.deeplink_secret else None,
        ),
    )
    leader = LeaderLock(engine, LEADER_LOCK_KEY)
    watchers = Watchers(
        sessions,
        udesk,
        lambda: router.texts,
        leader.is_leader,
        queue_interval=s.queue_poll_interval,
        ticket_interval=s.ticket_poll_interval,
        tickets=tickets,
        queue_max_wait=lambda: router.queue_max_wait,
    )
    # A confirmed /forget is an outbound "erase" record (bridge/privacy/forget.py).
    forget = ForgetHandler(
        Eraser(sessions, udesk, media_dir=s.media_dir),
        sender,
        lambda: router.texts,
        deadline=s.delivery_deadline,
    )
    return Parts(
        settings=s,
        engine=engine,
        waker=waker,
        sessions=sessions,
        router=router,
        ptb=ptb,
        media=media,
        udesk=udesk,
        budget=budget,
        sender=sender,
        queues=queues,
        handlers={
            "updates": updates.handle,
            "outbound": by_kind({intake.FORGET_KIND: forget.handle}, outbound.handle),
            "inbound": inbound.handle,
        },
        prefetchers={"outbound": outbound.prefetch},
        watchers=watchers,
        leader=leader,
        presence=presence,
        poller_lock=poller_lock,
        update_processor=updates,
    )
