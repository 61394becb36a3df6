"""Customer → Udesk: the handler of outbound records.

One record at a time per customer (the queue guarantees it), so the session bookkeeping
here never races with itself; it can race with Udesk pushes, which the code below tolerates
(the open-session unique index is the referee).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bridge.core import recording
from bridge.core.errors import (
    FileTooBig,
    NoAgentOnline,
    PermanentError,
    SessionGone,
    TransientError,
)
from bridge.core.model import Button, CustomerMessage, OutgoingItem, Part
from bridge.core.ports import MessageTarget, SessionOpened, TelegramGateway, UdeskGateway
from bridge.core.previews import PreviewSender
from bridge.core.routing import CustomerContext, Router
from bridge.core.surveys import SurveyFlow
from bridge.core.tickets import TicketDesk
from bridge.store import sessions as session_repo
from bridge.store.dispatcher import Done, Fail, Outcome, Retry
from bridge.store.media import MediaStore
from bridge.store.queue import Claimed
from bridge.store.tables import ButtonAction, Customer, ImSession, SessionState, utcnow

log = logging.getLogger("bridge.core.to_udesk")

# Telegram media kind → Udesk message type (im-open-api.txt, "Type and Supported List").
UDESK_TYPE = {
    "photo": "image",
    "sticker": "image",
    "animation": "video",
    "video": "video",
    "video_note": "video",
    "voice": "audio",
    "audio": "audio",
    "document": "file",
}
# How long a send may take before the agent is shown a preview of it.
PREVIEW_AFTER = 0.5
DEFAULT_MIME = {"photo": "image/jpeg", "voice": "audio/ogg", "video_note": "video/mp4"}


class LeaveMessage(Exception):
    """Routing or Udesk says no live session now: the message goes into a ticket."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ToUdeskConfig:
    delivery_deadline: float = 3600.0
    max_media_bytes: int = 20 * 1024 * 1024


class ToUdesk:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        udesk: UdeskGateway,
        telegram: TelegramGateway,
        router: Router,
        media: MediaStore,
        previews: PreviewSender,
        tickets: TicketDesk,
        config: ToUdeskConfig,
        *,
        reads: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self.sessions = sessions
        self.reads = reads or sessions  # single reads, no transaction (store.db)
        self.udesk = udesk
        self.telegram = telegram
        self.router = router
        self.media = media
        self.previews = previews
        self.tickets = tickets
        self.config = config
        self.surveys = SurveyFlow(sessions, udesk, lambda: router.texts, self._answer)
        # Read by ``prefetch`` for records about to be handled, by record id.
        self._prefetched: dict[int, tuple[Customer, ImSession | None, bool]] = {}

    # --- entry point -------------------------------------------------------------------

    async def prefetch(self, records: list[Claimed]) -> None:
        """Read what the claimed records' sends need (``load_for_send``) with one query for
        them all, just before they are handled; ``handle`` reads for itself any record this
        missed."""
        messages = [r for r in records if r.kind == "message" and r.extra.get("customer_id")]
        ids = {r.extra["customer_id"] for r in messages}
        if len(ids) < 2:
            return  # one query either way
        async with self.reads() as s:
            found = await session_repo.load_many_for_send(s, ids)
        for r in messages:
            loaded = found.get(r.extra.get("customer_id") or 0)
            if loaded is not None:
                self._prefetched[r.id] = loaded

    async def handle(self, record: Claimed) -> Outcome:
        customer_id = record.extra.get("customer_id")
        current: ImSession | None = None
        remark_awaited = False
        customer: Customer | None = None
        prefetched = self._prefetched.pop(record.id, None)
        if prefetched is not None:
            customer, current, remark_awaited = prefetched
        elif customer_id:
            async with self.reads() as s:
                customer, current, remark_awaited = await session_repo.load_for_send(s, customer_id)
        if customer is None:
            return Fail("customer no longer exists")
        try:
            await self._ensure_customer(customer)
            if record.kind == "message":
                await self._message(customer, record, current, remark_awaited=remark_awaited)
            elif record.kind == "command":
                await self._command(customer, record)
            elif record.kind == "button":
                await self._button(customer, record)
            elif record.kind == "online":
                await self.udesk.customer_online(customer.customer_token, record.payload["online"])
            elif record.kind == "profile":
                await self.udesk.update_customer(
                    customer.customer_token, nick_name=self._nick(customer)
                )
            else:
                return Fail(f"unknown outbound kind {record.kind!r}")
            return Done()
        except TransientError as exc:
            age = (utcnow() - record.created_at).total_seconds()
            if age > self.config.delivery_deadline:
                await self._tell_failed(customer, record)
                return Fail(f"gave up after {record.attempts} attempts: {exc}")
            if record.kind == "message":
                await self._preview_retry(customer, record)
            return Retry(str(exc), delay=exc.retry_after)
        except LeaveMessage as leave:
            # A command or button asked for a person and there is none: the customer is told
            # and their next messages go into a ticket.
            await self.tickets.start(customer, leave.reason)
            return Done()
        except NoAgentOnline:
            await self._no_agent(customer, record)
            return Fail("no agent online (2002)")
        except PermanentError as exc:
            await self._tell_failed(customer, record)
            return Fail(f"{type(exc).__name__}: {exc}")

    # --- customers and sessions --------------------------------------------------------

    @staticmethod
    def _nick(customer: Customer) -> str:
        name = " ".join(p for p in (customer.first_name, customer.last_name) if p)
        name = name or f"Telegram {customer.telegram_user_id}"
        return f"{name} (@{customer.username})" if customer.username else name

    async def _ensure_customer(self, customer: Customer) -> None:
        if customer.udesk_created:
            return
        udesk_id = await self.udesk.ensure_customer(
            customer.customer_token,
            nick_name=self._nick(customer),
            description=f"Telegram user id {customer.telegram_user_id}",
            lang=customer.language_code,
        )
        async with self.sessions.begin() as s:
            row = await s.get(Customer, customer.id)
            if row is not None:
                row.udesk_created = True
                row.udesk_customer_id = udesk_id
                row.udesk_synced_name = self._nick(customer)
        customer.udesk_created = True
        customer.udesk_customer_id = udesk_id

    def _context(self, customer: Customer) -> CustomerContext:
        tags = tuple(t.strip() for t in (customer.tags or "").split(",") if t.strip())
        return CustomerContext(
            language=customer.language_code,
            start_param=customer.start_param,
            level=customer.level,
            tags=tags,
            chat_type=customer.chat_type,
        )

    async def _current_session(self, customer: Customer) -> ImSession | None:
        async with self.reads() as s:
            return await session_repo.open_for(s, customer.id)

    async def _open_session(
        self,
        customer: Customer,
        *,
        want_agent: bool = False,
        existing: ImSession | None = None,
        quiet_no_agent: bool = False,
    ) -> ImSession:
        """The customer's open session, requesting one from Udesk when there is none.
        ``existing``: the open session the caller just read (saves a query).
        ``quiet_no_agent``: in a leave-a-message spell, do not ask again right after a 2002.
        Raises LeaveMessage when routing or Udesk say the message goes into a ticket."""
        if existing is None:
            existing = await self._current_session(customer)
        if existing is not None and not (want_agent and existing.state in ("robot", "urobot")):
            return existing
        decision = self.router.decide(self._context(customer), utcnow(), want_agent=want_agent)
        if decision.action == "leave_message":
            raise LeaveMessage("outside_hours")
        if quiet_no_agent and await self.tickets.live_help_unlikely(customer):
            raise LeaveMessage("no_agent")
        route = decision.route
        try:
            opened = await self.udesk.open_session(customer.customer_token, route)
        except NoAgentOnline:
            fallback = self.router.when_no_agent(want_agent=want_agent)
            if fallback.action != "session":
                raise LeaveMessage("no_agent") from None
            route = fallback.route
            opened = await self.udesk.open_session(customer.customer_token, route)
        async with self.sessions.begin() as s:
            current = await session_repo.open_for(s, customer.id)
            if current is not None and current.state in ("robot", "urobot") and want_agent:
                session_repo.close(current)
                await s.flush()
                current = None
            if current is None:
                current = ImSession(customer_id=customer.id, assign_type=route.assign_type)
                current.state = SessionState.QUEUED.value
                s.add(current)
            apply_opened(current, opened, route.rule_name, route.robot_id, route.scene_id)
            try:
                await s.flush()
            except IntegrityError:
                # A push opened it between our read and write; its version stands.
                raise TransientError("session created concurrently, retrying") from None
            await self._announce(s, customer, current, opened)
        # For operators: ids and the rule only, never what the customer wrote.
        log.info(
            "opened a %s session %s for customer %s (rule %s)",
            opened.outcome,
            opened.im_sub_session_id or "-",
            customer.id,
            route.rule_name or "default",
        )
        return current

    async def _announce(
        self, s: AsyncSession, customer: Customer, row: ImSession, opened: SessionOpened
    ) -> None:
        texts = self.router.texts
        key = f"session:{row.id}:{opened.outcome}"
        if opened.outcome == "queued" and row.state == SessionState.QUEUED.value:
            position = opened.position or 0
            if position > 0:
                text = texts.get("queued", customer.language_code, position=position)
            else:
                text = texts.get("queue_assigning", customer.language_code)
            await recording.to_telegram(
                s,
                customer,
                OutgoingItem(kind="queue_position", html=text, plain=True),
                dedup_key=f"{key}:{position}",
                extra={"session_id": row.id},
            )
        elif opened.outcome in ("robot", "urobot") and (opened.welcome_html or opened.suggestions):
            buttons = []
            for question in opened.suggestions[:8]:
                action = await self._action(s, customer, {"t": "ask", "q": question})
                buttons.append([Button(text=question[:60], action={"id": action})])
            human = await self._action(s, customer, {"t": "human"})
            buttons.append(
                [Button(texts.get("talk_to_human", customer.language_code), {"id": human})]
            )
            await recording.to_telegram(
                s,
                customer,
                OutgoingItem(kind="text", html=opened.welcome_html or "", buttons=buttons),
                dedup_key=key,
            )

    @staticmethod
    async def _action(s: AsyncSession, customer: Customer, action: dict[str, Any]) -> int:
        row = ButtonAction(customer_id=customer.id, action=action)
        s.add(row)
        await s.flush()
        return row.id

    @staticmethod
    def _target(row: ImSession) -> MessageTarget:
        if row.state == SessionState.QUEUED.value:
            return MessageTarget(-3)
        if row.state == SessionState.ROBOT.value:
            return MessageTarget(0)
        if row.state == SessionState.UROBOT.value:
            return MessageTarget(
                -1,
                robot_id=row.robot_id,
                scene_id=row.scene_id,
                urobot_session_id=row.urobot_session_id,
            )
        return MessageTarget(int(row.im_sub_session_id or 0))

    async def _mark_closed(self, row: ImSession) -> None:
        async with self.sessions.begin() as s:
            current = await s.get(ImSession, row.id)
            if current is not None and current.state != SessionState.CLOSED.value:
                session_repo.close(current)

    # --- messages ----------------------------------------------------------------------

    async def _message(
        self,
        customer: Customer,
        record: Claimed,
        current: ImSession | None,
        *,
        remark_awaited: bool,
    ) -> None:
        """``current`` and ``remark_awaited``: as loaded with the customer (load_for_send)."""
        message = CustomerMessage.from_dict(record.payload)
        if remark_awaited and message.media is None and message.html and not message.edited:
            if await self.surveys.take_remark(customer, message.html):
                return  # the remark a survey asked for, not a message for an agent
        base_id = f"tg{customer.chat_id}_{message.message_id}"
        if message.edited:
            base_id += f"_e{message.edit_date or 0}"
        # A send that is slow (Udesk timing out, the client retrying) shows the agent a
        # preview of what is coming; it is dropped the moment the message lands.
        sid = _agent_session_id(current)
        preview = message.html or (message.media.file_name if message.media else None)
        slow = None
        if sid and preview:
            slow = asyncio.get_running_loop().call_later(
                PREVIEW_AFTER, self.previews.show, sid, preview
            )
        try:
            parts = await self._parts(customer, message, sid)
            if current is None and await self.tickets.collecting(customer):
                # In a leave-a-message spell: into the ticket, unless live help is back.
                try:
                    current = await self._open_session(customer, quiet_no_agent=True)
                except LeaveMessage:
                    await self.tickets.add(customer, parts, reason=None)
                    return
            try:
                row = await self._open_session(customer, existing=current)
            except LeaveMessage as leave:
                await self.tickets.add(customer, parts, reason=leave.reason)
                return
            for index, part in enumerate(parts):
                message_id = base_id if index == 0 else f"{base_id}_{index}"
                row = await self._send(
                    customer, row, message_id, part.udesk_type, part.content, part.filename
                )
        finally:
            if slow is not None:
                slow.cancel()
        if row.im_sub_session_id and row.state == SessionState.AGENT.value:
            self.previews.landed(int(row.im_sub_session_id))

    async def _send(
        self,
        customer: Customer,
        row: ImSession,
        message_id: str,
        udesk_type: str,
        content: str,
        filename: str | None,
    ) -> ImSession:
        if row.state in (SessionState.ROBOT.value, SessionState.UROBOT.value):
            # Robots take text only (im-open-api.txt, "Send Message"): media go as a link.
            if udesk_type != "message":
                udesk_type, content = "message", f"{filename or udesk_type}: {content}"
        for attempt in (1, 2):
            try:
                await self.udesk.send_message(
                    customer.customer_token,
                    self._target(row),
                    message_id=message_id,
                    type=udesk_type,
                    content=content,
                    filename=filename,
                )
                return row
            except SessionGone:
                # 9200: the session ended on Udesk's side.  Open a new one and send again,
                # once; the same message_id keeps Udesk from showing it twice.
                await self._mark_closed(row)
                if attempt == 2:
                    raise TransientError("session gone twice in a row") from None
                log.info("session %s gone; opening a new one", row.im_sub_session_id)
                row = await self._open_session(customer)
        return row

    async def _parts(
        self, customer: Customer, message: CustomerMessage, agent_session: int | None
    ) -> list[Part]:
        """What this message becomes in Udesk, in order."""
        texts = self.router.texts
        lang = None  # agent-facing sentences use the fallback language
        parts: list[Part] = []
        if message.media is not None:
            media = message.media
            if agent_session:
                # A file is being fetched from Telegram: the agent sees it coming.
                self.previews.show(agent_session, f"📎 {media.file_name or media.kind}")
            try:
                downloaded = await self.telegram.download(
                    media.file_id, max_bytes=self.config.max_media_bytes
                )
            except FileTooBig:
                name = media.file_name or media.kind
                await self._say_once(customer, "file_too_big", f"big:{media.file_unique_id}")
                parts.append(Part("message", texts.get("agent_file_too_big", lang, name=name)))
            else:
                content_type = media.mime_type or downloaded.mime_type
                if content_type == "application/octet-stream":
                    content_type = DEFAULT_MIME.get(media.kind, content_type)
                stored = await self.media.save(
                    customer.id,
                    downloaded.data,
                    media.file_name or downloaded.file_name,
                    content_type,
                )
                parts.append(
                    Part(
                        UDESK_TYPE[media.kind],
                        stored.url,
                        stored.filename,
                        downloaded.data,
                        content_type,
                    )
                )
        text = message.html
        if message.location is not None:
            lat, lon = message.location
            key = "agent_venue" if message.venue_title else "agent_location"
            text = texts.get(key, lang, lat=lat, lon=lon, title=message.venue_title or "")
        elif message.contact_phone is not None:
            text = texts.get(
                "agent_contact", lang, name=message.contact_name or "", phone=message.contact_phone
            )
        if text:
            if message.edited:
                text = texts.get("agent_edited", lang, text=text)
            parts.append(Part("message", text))
        return parts

    async def _preview_retry(self, customer: Customer, record: Claimed) -> None:
        """A message is being retried: show the agent what is coming meanwhile."""
        message = CustomerMessage.from_dict(record.payload)
        preview = message.html or (message.media.file_name if message.media else "") or ""
        sid = _agent_session_id(await self._current_session(customer))
        if sid and preview:
            self.previews.show(sid, preview)

    # --- commands, buttons, surveys ----------------------------------------------------

    async def _command(self, customer: Customer, record: Claimed) -> None:
        name = record.payload["name"]
        dedup = f"cmd:{record.dedup_key}"
        async with self.sessions() as s:
            row = await session_repo.open_for(s, customer.id)
        if name == "agent":
            await self._command_agent(customer)
        elif name == "end":
            if row is None:
                await self._say_once(customer, "no_session", dedup)
                return
            if row.state == SessionState.QUEUED.value and row.queue_name:
                await self.udesk.leave_queue(customer.customer_token, row.queue_name)
            elif row.state == SessionState.AGENT.value and row.im_sub_session_id:
                try:
                    await self.udesk.close_session(int(row.im_sub_session_id))
                except SessionGone:
                    pass  # already closed on Udesk's side: the outcome we wanted
            await self._mark_closed(row)
            await self._say_once(customer, "session_ended_by_user", dedup)
        elif name == "queue_timeout":
            # Waited longer than the routing file's queue.max_wait: leave the queue and do
            # what routing says a missing agent leads to (a ticket, or a robot).
            if row is None or row.state != SessionState.QUEUED.value:
                return
            if row.queue_name:
                await self.udesk.leave_queue(customer.customer_token, row.queue_name)
            await self._mark_closed(row)
            fallback = self.router.when_no_agent()
            if fallback.action == "session":
                opened = await self.udesk.open_session(customer.customer_token, fallback.route)
                async with self.sessions.begin() as s:
                    fresh = ImSession(
                        customer_id=customer.id, assign_type=fallback.route.assign_type
                    )
                    s.add(fresh)
                    apply_opened(
                        fresh,
                        opened,
                        "queue wait exceeded",
                        fallback.route.robot_id,
                        fallback.route.scene_id,
                    )
                    await s.flush()
                    await self._announce(s, customer, fresh, opened)
            else:
                await self.tickets.start(customer, "queue_timeout")
        elif name == "cancel":
            if row is None or row.state != SessionState.QUEUED.value:
                await self._say_once(customer, "not_in_queue", dedup)
                return
            if row.queue_name:
                await self.udesk.leave_queue(customer.customer_token, row.queue_name)
            await self._mark_closed(row)
            await self._say_once(customer, "left_queue", dedup)

    async def _button(self, customer: Customer, record: Claimed) -> None:
        action_id = record.payload.get("action_id")
        callback_id = record.payload["callback_query_id"]
        async with self.sessions() as s:
            row = await s.get(ButtonAction, action_id) if action_id else None
        texts = self.router.texts
        lang = customer.language_code
        if row is None or row.customer_id != customer.id:
            await self._answer(callback_id, texts.get("button_expired", lang))
            return
        action = row.action
        kind = action.get("t")
        if kind == "ask":
            await self._answer(callback_id, None)
            session = await self._open_session(customer)
            await self._send(
                customer, session, f"cb{callback_id}"[:64], "message", str(action["q"]), None
            )
        elif kind == "human":
            await self._answer(callback_id, None)
            await self._command_agent(customer)
        elif kind == "useful":
            await self.udesk.robot_useful(
                customer.customer_token,
                str(action["message_id"]),
                int(action["question_id"]),
                bool(action["useful"]),
            )
            await self._answer(callback_id, texts.get("feedback_thanks", lang))
        elif kind == "answer_survey":
            await self.udesk.answer_survey(
                customer.customer_token,
                int(action["log_id"]),
                int(action["session"]),
                int(action["option"]),
                int(action["robot_id"]),
                int(action["scene_id"]),
            )
            await self._answer(callback_id, texts.get("feedback_thanks", lang))
        elif kind == "flow":
            await self._answer(callback_id, None)
            await self.udesk.flow(
                customer.customer_token,
                int(action["session"]),
                int(action["flow_id"]),
                int(action["robot_id"]),
                int(action["scene_id"]),
            )
        elif kind in ("survey", "survey_resolved"):
            await self.surveys.tapped(customer, callback_id, action)
        else:
            await self._answer(callback_id, texts.get("button_expired", lang))

    async def _command_agent(self, customer: Customer) -> None:
        async with self.sessions() as s:
            row = await session_repo.open_for(s, customer.id)
        if row is not None and row.state == SessionState.UROBOT.value:
            if row.robot_id and row.scene_id and row.urobot_session_id:
                await self.udesk.transfer_survey(
                    int(row.urobot_session_id), int(row.robot_id), int(row.scene_id)
                )
        if row is None or row.state in (SessionState.ROBOT.value, SessionState.UROBOT.value):
            await self._open_session(customer, want_agent=True)
        # Already with an agent or in the queue for one: nothing to do.

    async def _answer(self, callback_id: str, text: str | None) -> None:
        try:
            await self.telegram.answer_button(callback_id, text)
        except Exception as exc:  # an expired callback must not fail the action itself
            log.debug("answerCallbackQuery failed: %s", exc)

    # --- telling the customer ----------------------------------------------------------

    async def _say_once(self, customer: Customer, key: str, dedup: str) -> None:
        async with self.sessions.begin() as s:
            await recording.say(s, self.router.texts, customer, key, dedup_key=f"say:{key}:{dedup}")

    async def _tell_failed(self, customer: Customer, record: Claimed) -> None:
        if record.kind in ("message", "command"):
            await self._say_once(customer, "delivery_failed", record.dedup_key)

    async def _no_agent(self, customer: Customer, record: Claimed) -> None:
        # Routing's no_agent_online pointed at a route that had no agent either: the
        # customer hears it, once per message, rather than waiting in silence.
        await self._say_once(customer, "no_agent_online", record.dedup_key)


def _agent_session_id(row: ImSession | None) -> int | None:
    """The Udesk session id when the customer is with an agent (previews need one)."""
    if row is not None and row.state == SessionState.AGENT.value and row.im_sub_session_id:
        return int(row.im_sub_session_id)
    return None


def apply_opened(
    row: ImSession,
    opened: SessionOpened,
    rule: str,
    robot_id: int | None,
    scene_id: int | None,
) -> None:
    """What Udesk's answer to a session request makes of the customer's session row."""
    row.rule_name = rule
    row.assign_type = "agent" if opened.outcome in ("agent", "queued") else opened.outcome
    if opened.outcome == "agent":
        # A start_session push may already have set the agent: keep what we know.
        row.state = SessionState.AGENT.value
        row.im_sub_session_id = opened.im_sub_session_id or row.im_sub_session_id
        row.agent_id = opened.agent_id or row.agent_id
        row.agent_name = opened.agent_name or row.agent_name
        row.survey_options = opened.survey_options or row.survey_options
    elif opened.outcome == "queued":
        if row.state != SessionState.AGENT.value:
            row.state = SessionState.QUEUED.value
            row.queue_name = opened.queue_name
            row.queue_position = opened.position
    elif opened.outcome == "robot":
        row.state = SessionState.ROBOT.value
        row.im_sub_session_id = 0
    else:
        row.state = SessionState.UROBOT.value
        row.im_sub_session_id = -1
        row.robot_id = robot_id
        row.scene_id = scene_id
        row.urobot_session_id = opened.urobot_session_id
