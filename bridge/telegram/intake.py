"""Telegram updates in: stored (dedup on ``update_id``) and committed before Telegram is told.

PTB's Updater advances the offset as soon as it has queued an update, and its webhook
answers 200 before anything is stored; a crash then loses the update.  So we own both:
``Poller`` asks ``getUpdates`` for the next offset only after the batch is committed, and
``webhook_handler`` answers 200 only after the commit.  ``UpdateProcessor`` then processes
the stored updates, in order per chat, with PTB's handlers.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Update
from telegram.error import Conflict, InvalidToken, NetworkError, TelegramError
from telegram.ext import Application

from bridge import metrics
from bridge.core import intake, recording
from bridge.core.model import Incoming
from bridge.core.texts import Texts
from bridge.logs import correlation_id
from bridge.store import customers
from bridge.store.db import DATABASE_DOWN, is_bad_data
from bridge.store.dispatcher import Done, Fail, Outcome, Retry
from bridge.store.exclusive import EXIT_ALREADY_RUNNING, AlreadyRunning, PollerLock
from bridge.store.notify import UPDATES, mark
from bridge.store.queue import Claimed, DurableQueue, LeaseLost, enqueue, enqueue_many
from bridge.store.tables import IN_FLIGHT, RecordStatus, TelegramUpdate, utcnow
from bridge.tasks import Unrecoverable
from bridge.telegram.translate import Translation, translate
from bridge.untrusted import BadJson, load_json, secret_matches

log = logging.getLogger("bridge.telegram.intake")

MAX_UPDATE_ATTEMPTS = 5
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]
# Telegram answers 401 Unauthorized (PTB's InvalidToken) to a wrong or revoked token.
TOKEN_REFUSED = (
    "Telegram refused TELEGRAM_BOT_TOKEN (401 Unauthorized): it is wrong or was revoked; "
    "set the bot's current token from @BotFather"
)


async def waiting_locks(session: AsyncSession, locks: set[str]) -> set[str]:
    """Which of these chats have updates still waiting in the queue."""
    if not locks:
        return set()
    t = TelegramUpdate
    rows = await session.scalars(
        select(t.lock).where(t.lock.in_(sorted(locks)), t.status.in_(IN_FLIGHT)).distinct()
    )
    return set(rows)


def _chat_of(update: dict[str, Any]) -> str:
    for key in ("message", "edited_message", "my_chat_member"):
        if isinstance(update.get(key), dict):
            chat = update[key].get("chat") or {}
            if "id" in chat:
                return f"chat:{chat['id']}"
    query = update.get("callback_query")
    if isinstance(query, dict):
        user = query.get("from") or {}
        return f"chat:{user.get('id', 'unknown')}"
    return "chat:unknown"


async def store_updates(
    sessions: async_sessionmaker[AsyncSession], updates: list[dict[str, Any]]
) -> int:
    """Store raw updates in one transaction; returns how many were new."""
    new = 0
    async with sessions.begin() as session:
        for update in updates:
            update_id = update.get("update_id")
            if not isinstance(update_id, int):
                continue
            created = await enqueue(
                session,
                TelegramUpdate,
                dedup_key=f"u:{update_id}",
                lock=_chat_of(update),
                kind="update",
                payload=update,
                correlation_id=f"tg-{update_id}",  # followed into the records it makes
            )
            new += created is not None
        if new:
            mark(session, UPDATES)
    return new


class Poller:
    """``TELEGRAM_MODE=polling``: a getUpdates loop that commits before confirming."""

    def __init__(
        self,
        app: Application[Any, Any, Any, Any, Any, Any],
        sessions: async_sessionmaker[AsyncSession],
        *,
        lock: PollerLock | None = None,
        timeout: int = 25,
        processor: UpdateProcessor | None = None,
    ) -> None:
        self.app = app
        self.sessions = sessions
        self.lock = lock
        self.timeout = timeout
        self.processor = processor
        self.offset: int | None = None

    async def run(self) -> None:
        await self.app.bot.delete_webhook(drop_pending_updates=False)
        backoff = 1.0
        while True:
            if self.lock is not None:
                try:
                    await self.lock.ensure()
                except DATABASE_DOWN:
                    await asyncio.sleep(2)
                    continue
                except AlreadyRunning as exc:
                    # Another process polls now (our lock went with a database restart):
                    # two pollers would steal each other's updates.
                    raise Unrecoverable(
                        f"lost the poller lock: {exc}", exit_code=EXIT_ALREADY_RUNNING
                    ) from None
            try:
                updates = await self.app.bot.get_updates(
                    offset=self.offset,
                    timeout=self.timeout,
                    allowed_updates=ALLOWED_UPDATES,
                    read_timeout=self.timeout + 10,
                )
            except InvalidToken:
                raise Unrecoverable(TOKEN_REFUSED) from None
            except Conflict as exc:
                log.error("another getUpdates consumer or a webhook is active: %s", exc.message)
                await asyncio.sleep(5)
                continue
            except (NetworkError, TelegramError) as exc:
                log.warning("getUpdates failed (%s); retrying in %.0fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 1.0
            if not updates:
                continue
            raw = [u.to_dict() for u in updates]
            while True:
                try:
                    if self.processor is not None:
                        await self.processor.store_and_process(raw, updates)
                    else:
                        await store_updates(self.sessions, raw)
                    break
                except DATABASE_DOWN as exc:
                    # Not stored, so not confirmed: keep the batch and try again.
                    log.warning("cannot store updates (%s); retrying", type(exc).__name__)
                    await asyncio.sleep(2)
            # Only now may Telegram forget them: the next call carries the new offset.
            self.offset = max(u.update_id for u in updates) + 1


def webhook_handler(
    sessions: async_sessionmaker[AsyncSession],
    secret: str,
    processor: UpdateProcessor | None = None,
) -> Any:
    """``POST /telegram/webhook``: header check, store (and, with a processor, record what
    the update means), commit, then 200."""

    async def handle(request: web.Request) -> web.Response:
        # Any bytes may come in the header (secret_matches never raises on them).
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not secret_matches(given, secret):
            return web.json_response({"error": "forbidden", "detail": ""}, status=403)
        try:
            update = load_json(await request.read())
        except BadJson as exc:
            return web.json_response({"error": "bad_request", "detail": str(exc)}, status=400)
        if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
            return web.json_response(
                {"error": "bad_request", "detail": "not an update"}, status=400
            )
        try:
            if processor is not None:
                await processor.store_and_process([update])
            else:
                await store_updates(sessions, [update])
        except DATABASE_DOWN:
            log.warning("database unavailable; Telegram will redeliver the update")
            return web.json_response({"error": "unavailable", "detail": ""}, status=503)
        return web.Response(status=200)

    return handle


class UpdateProcessor:
    """Handler of stored updates: PTB handlers translate, the core records, one commit."""

    def __init__(
        self,
        app: Application[Any, Any, Any, Any, Any, Any],
        translation: Translation,
        sessions: async_sessionmaker[AsyncSession],
        queue: DurableQueue,
        texts: Any,
        *,
        album_debounce: float,
        identity: intake.Identity,
    ) -> None:
        self.app = app
        self.translation = translation
        self.sessions = sessions
        self.queue = queue
        self.texts = texts  # a callable returning the Texts in force (routing reloads)
        self.album_debounce = album_debounce
        self.identity = identity

    async def handle(self, record: Claimed) -> Outcome:
        try:
            return await self._handle(record)
        except LeaseLost:
            raise
        except Exception as exc:
            if is_bad_data(exc):
                # A value the database refuses (a NUL in a /start parameter, a name): the
                # same update is refused every time, so it fails now and the chat moves on.
                log.warning(
                    "update record %s carries a value the database refuses (%s); failed",
                    record.id,
                    type(exc).__name__,
                )
                first_line = str(exc).splitlines()[0][:300] if str(exc) else ""
                return Fail(f"unstorable value in the update: {type(exc).__name__}: {first_line}")
            # A bug on one odd update must not block the chat's later updates forever.
            log.exception("could not process update record %s", record.id)
            if record.attempts >= MAX_UPDATE_ATTEMPTS:
                return Fail(f"unprocessable update: {type(exc).__name__}: {exc}")
            return Retry(f"{type(exc).__name__}: {exc}")

    async def store_and_process(
        self, updates: list[dict[str, Any]], parsed: list[Update] | None = None
    ) -> int:
        """The fast path: store the updates and record what they mean in one transaction.

        Each update is stored already done, beside its effects, which saves the queue hop (a
        claim and a completion, two transactions) per update; the guarantee is the same,
        since the update and its effects commit or vanish together.  A chat whose earlier
        updates still wait in the queue keeps its order: its updates queue up behind them.
        Anything unexpected rolls the batch back and stores it for the dispatcher instead,
        which retries and at worst dead-letters one update rather than stall intake.
        Returns how many updates were new.
        """
        translated: list[tuple[dict[str, Any], Incoming | None]] = []
        try:
            for index, raw in enumerate(updates):
                update_id = raw.get("update_id")
                if not isinstance(update_id, int):
                    continue
                update = parsed[index] if parsed else Update.de_json(raw, self.app.bot)
                translated.append((raw, translate(update, self.translation)))
            async with self.sessions.begin() as session:
                return await self._record_batch(session, translated)
        except Exception as exc:
            # The queued path logs the details if the problem is the update itself.
            log.warning("updates not processed inline (%s); queued", type(exc).__name__)
            log.debug("inline processing failed", exc_info=True)
            # Raises DATABASE_DOWN when the database is the problem: not stored, so the
            # caller must not confirm the updates to Telegram.
            return await store_updates(self.sessions, updates)

    async def _record_batch(
        self, session: AsyncSession, translated: list[tuple[dict[str, Any], Incoming | None]]
    ) -> int:
        texts: Texts = self.texts()
        locks = {_chat_of(raw) for raw, _ in translated}
        waiting = await waiting_locks(session, locks)
        # Every update of the batch in one INSERT (a round trip each was most of what a
        # batch cost): done, with its effects written below, or queued behind its chat's
        # waiting updates, like them.
        records: list[dict[str, Any]] = []
        for raw, _ in translated:
            update_id, lock = raw["update_id"], _chat_of(raw)
            inline = lock not in waiting
            records.append(
                {
                    "dedup_key": f"u:{update_id}",
                    "lock": lock,
                    "kind": "update",
                    "payload": raw,
                    "correlation_id": f"tg-{update_id}",
                    "status": (RecordStatus.DONE if inline else RecordStatus.TODO).value,
                    "finished_at": utcnow() if inline else None,
                }
            )
        created = await enqueue_many(session, TelegramUpdate, records)
        if any(r["lock"] in waiting and r["dedup_key"] in created for r in records):
            mark(session, UPDATES)
        # Their customers with one query, not one per update.
        await customers.prefetch_by_user(
            session, {incoming.user.user_id for _, incoming in translated if incoming}
        )
        new = 0
        recording.gather_outbound(session)  # their records for Udesk: one INSERT too
        for (_, incoming), record in zip(translated, records, strict=True):
            record_id = created.get(record["dedup_key"])
            if record_id is None:
                continue  # seen before (Telegram redelivered it)
            new += 1
            if record["lock"] in waiting:
                continue  # the dispatcher processes it in its turn
            cid = correlation_id.set(record["correlation_id"])
            try:
                if incoming is not None:
                    await intake.accept(
                        session,
                        texts,
                        incoming,
                        album_debounce=self.album_debounce,
                        identity=self.identity,
                    )
                # The line the dispatcher writes for a record it handled, for the same reader.
                log.debug(
                    "%s/%s done inline",
                    self.queue.name,
                    record_id,
                    extra={"queue": self.queue.name, "record_id": record_id, "outcome": "done"},
                )
            finally:
                correlation_id.reset(cid)
            metrics.record_outcome(self.queue.name, "update", "done", 0.0)
        await recording.flush_outbound(session)
        return new

    async def _handle(self, record: Claimed) -> Outcome:
        update = Update.de_json(record.payload, self.app.bot)
        incoming = translate(update, self.translation)
        texts: Texts = self.texts()
        async with self.sessions.begin() as session:
            if incoming is not None:
                await intake.accept(
                    session,
                    texts,
                    incoming,
                    album_debounce=self.album_debounce,
                    identity=self.identity,
                )
            # Marked done in the same transaction that wrote its effects.
            await self.queue.complete_in(session, record.id)
        return Done(already_recorded=True)
