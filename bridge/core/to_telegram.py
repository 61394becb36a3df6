"""Udesk → customer: pushes become inbound records, then Telegram messages.

``accept_push`` runs inside the push request's transaction and must stay cheap (Udesk waits
at most 5 s): it only writes rows.  ``ToTelegram.handle`` is the dispatcher's handler that
shows each record in the chat.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bridge.core import recording
from bridge.core.errors import ChatUnreachable, PermanentError, TransientError
from bridge.core.model import AgentMessage, Button, OutgoingItem
from bridge.core.ports import TelegramGateway
from bridge.core.texts import Texts
from bridge.logs import correlation_id
from bridge.store import customers
from bridge.store import sessions as session_repo
from bridge.store.dispatcher import Done, Fail, Outcome, Retry
from bridge.store.queue import Claimed, enqueue
from bridge.store.tables import (
    ButtonAction,
    Customer,
    ImSession,
    InboundMessage,
    RecordStatus,
    SessionState,
    Survey,
    utcnow,
)

log = logging.getLogger("bridge.core.to_telegram")

MEDIA_KINDS = {"image", "audio", "video", "file"}
ALBUM_KINDS = {"image", "video"}


def push_key(message_id: str) -> str:
    """The dedup key of a pushed message: its Udesk id, hashed when too long for the column."""
    if len(message_id) > 150:
        message_id = "sha256-" + hashlib.sha256(message_id.encode("utf-8", "replace")).hexdigest()
    return f"udesk:{message_id}"


async def _action(s: AsyncSession, customer: Customer, action: dict[str, Any]) -> dict[str, int]:
    row = ButtonAction(customer_id=customer.id, action=action)
    s.add(row)
    await s.flush()
    return {"id": row.id}


async def accept_pushes(
    s: AsyncSession, texts: Texts, pushes: list[tuple[str, list[AgentMessage], str | None]]
) -> list[int]:
    """``accept_push`` for the pushes of one group commit, each ``(customer_token,
    messages, correlation id)``; returns what each made.  Their customers are read with one
    query, and the plain messages (text, a single attachment) of known customers, nearly
    all pushes, are queued with one INSERT: a round trip per push, not the work, was what a
    burst of pushes cost.  Order holds: whatever goes the long way first flushes the plain
    records gathered before it."""
    known = await customers.get_many_by_token(s, {token for token, _, _ in pushes})
    created = [0] * len(pushes)
    plain: list[tuple[int, dict[str, Any]]] = []  # (push index, record)

    async def flush() -> None:
        await _queue_plain(s, plain, created)
        plain.clear()

    for index, (token, messages, cid) in enumerate(pushes):
        customer = known.get(token)
        if customer is not None and _plain(messages):
            plain.extend(_plain_records(index, customer, messages, cid))
            continue
        if plain:
            await flush()
        # The records a push makes carry its correlation id (observability).
        reset = correlation_id.set(cid)
        try:
            created[index] = await accept_push(s, texts, token, messages, customer)
        finally:
            correlation_id.reset(reset)
    if plain:
        await flush()
    return created


async def accept_plain_pushes(
    s: AsyncSession, pushes: list[tuple[str, list[AgentMessage], str | None]]
) -> list[int] | None:
    """``accept_pushes`` for the common batch, every push plain and for a known customer,
    in statements that each stand alone (autocommit on PostgreSQL, as
    ``GroupCommit.run_together(first=…)`` runs it): the customers read, the records
    inserted, the dispatchers notified; None, with nothing written, for any other batch,
    which then goes the usual way in a transaction."""
    if not all(_plain(messages) for _, messages, _ in pushes):
        return None
    known = await customers.get_many_by_token(s, {token for token, _, _ in pushes})
    if any(token not in known for token, _, _ in pushes):
        return None
    created = [0] * len(pushes)
    plain: list[tuple[int, dict[str, Any]]] = []
    for index, (token, messages, cid) in enumerate(pushes):
        plain.extend(_plain_records(index, known[token], messages, cid))
    await _queue_plain(s, plain, created)
    return created


def _plain_records(
    index: int, customer: Customer, messages: list[AgentMessage], cid: str | None
) -> list[tuple[int, dict[str, Any]]]:
    """A plain push's records, each with the index of its push."""
    return [
        (
            index,
            recording.telegram_record(
                customer, _plain_item(m), dedup_key=push_key(m.message_id), correlation_id=cid
            ),
        )
        for m in messages
    ]


async def _queue_plain(
    s: AsyncSession, plain: list[tuple[int, dict[str, Any]]], created: list[int]
) -> None:
    """Insert ``plain`` records with one statement; counts the new ones by push index."""
    new = await recording.to_telegram_many(s, [record for _, record in plain])
    for index, record in plain:
        if new.pop(record["dedup_key"], None) is not None:
            created[index] += 1


def _plain(messages: list[AgentMessage]) -> bool:
    """Text and attachments only, and no album (several images or videos together)."""
    kinds = [m.kind for m in messages]
    album = sum(1 for k in kinds if k in ALBUM_KINDS)
    return album <= 1 and all(k == "text" or k in MEDIA_KINDS for k in kinds)


def _plain_item(m: AgentMessage) -> OutgoingItem:
    if m.kind in MEDIA_KINDS:
        return OutgoingItem(kind="media", media_type=m.kind, url=m.content, filename=m.filename)
    return OutgoingItem(kind="text", html=m.content)


async def accept_push(
    s: AsyncSession,
    texts: Texts,
    token: str,
    messages: list[AgentMessage],
    customer: Customer | None = None,
) -> int:
    """Record one push; returns how many new records it made (0 for a duplicate).
    ``customer``: the token's holder when the caller has read it already."""
    if customer is None:
        customer = await customers.get_by_token(s, token)
    if customer is None:
        # Acknowledged and kept for inspection, never delivered: we do not know the chat.
        for m in messages:
            await enqueue(
                s,
                InboundMessage,
                dedup_key=push_key(m.message_id),
                lock=f"unknown:{token}"[:100],
                kind=m.kind,
                payload={"customer_token": token, "message": m.to_dict()},
                status=RecordStatus.DISCARDED.value,
                last_error="unknown customer_token",
            )
        log.warning("push for an unknown customer_token recorded, not delivered")
        return 0
    created = 0
    album = [m for m in messages if m.kind in ALBUM_KINDS]
    album_ids = {m.message_id for m in album} if len(album) > 1 else set()
    if album_ids:
        items = [{"media_type": m.kind, "url": m.content, "filename": m.filename} for m in album]
        key = push_key("+".join(sorted(album_ids)))
        if await recording.to_telegram(
            s, customer, OutgoingItem(kind="album", items=items), dedup_key=key
        ):
            created += 1
    for m in messages:
        if m.message_id in album_ids:
            continue
        if await _accept_one(s, texts, customer, m):
            created += 1
    return created


async def _accept_one(s: AsyncSession, texts: Texts, customer: Customer, m: AgentMessage) -> bool:
    lang = customer.language_code
    key = push_key(m.message_id)
    # Events change the session in the same transaction as the record, so a duplicate push
    # (same message_id) finds its record and changes nothing twice.
    if m.kind == "hidden":
        created = await recording.to_telegram(
            s, customer, OutgoingItem(kind="text", html=m.content), dedup_key=key
        )
        if created:
            await _mark(s, created, RecordStatus.DISCARDED, "not for the customer")
        return False
    if m.kind == "start_session":
        row = await _agent_session(s, customer, m)
        name = m.agent_name or row.agent_name or ""
        item = OutgoingItem(
            kind="text", html=texts.get("agent_joined", lang, agent=name), plain=True
        )
        return bool(await recording.to_telegram(s, customer, item, dedup_key=key))
    if m.kind == "transfer":
        row = await _agent_session(s, customer, m)
        name = m.agent_name or row.agent_name or ""
        item = OutgoingItem(
            kind="text", html=texts.get("transferred", lang, agent=name), plain=True
        )
        return bool(await recording.to_telegram(s, customer, item, dedup_key=key))
    if m.kind == "close":
        return await _close(s, texts, customer, m, key)
    if m.kind == "robot":
        return await _robot(s, texts, customer, m, key)
    if m.kind == "urobot":
        return await _urobot(s, texts, customer, m, key)
    return bool(await recording.to_telegram(s, customer, _plain_item(m), dedup_key=key))


async def _mark(s: AsyncSession, record_id: int, status: RecordStatus, why: str) -> None:
    row = await s.get(InboundMessage, record_id)
    if row is not None:
        row.status = status.value
        row.last_error = why
        row.finished_at = utcnow()


async def _agent_session(s: AsyncSession, customer: Customer, m: AgentMessage) -> ImSession:
    row = await session_repo.open_for(s, customer.id)
    if row is None:
        try:
            async with s.begin_nested():
                row = ImSession(customer_id=customer.id, assign_type="agent", state="agent")
                s.add(row)
                await s.flush()
        except IntegrityError:
            # The outbound side opened it at the same moment; the unique index referees.
            row = await session_repo.open_for(s, customer.id)
            if row is None:
                raise
    row.assign_type = "agent"
    row.state = SessionState.AGENT.value
    if m.im_sub_session_id:
        row.im_sub_session_id = m.im_sub_session_id
    row.agent_id = m.agent_id or row.agent_id
    row.agent_name = (m.agent_name or row.agent_name or "")[:200] or None
    row.queue_position = None
    if m.survey_options:
        row.survey_options = m.survey_options
    await s.flush()
    return row


async def _close(
    s: AsyncSession, texts: Texts, customer: Customer, m: AgentMessage, key: str
) -> bool:
    lang = customer.language_code
    item = OutgoingItem(kind="text", html=texts.get("session_closed", lang), plain=True)
    if not await recording.to_telegram(s, customer, item, dedup_key=key):
        return False
    row = await session_repo.open_for(s, customer.id)
    if row is None and m.im_sub_session_id:
        row = await session_repo.by_sub_session(s, m.im_sub_session_id)
    if row is not None:
        session_repo.close(row)
        options = m.survey_options or row.survey_options
        if options and options.get("enabled"):
            await _offer_survey(s, texts, customer, row, options, key)
    return True


def survey_choices(options: dict[str, Any]) -> list[tuple[int, str]]:
    """The (option id, label) pairs to offer, from ``show_type``'s list or ``options``."""
    show_type = str(options.get("show_type") or "")
    section = options.get({"exp": "expression"}.get(show_type, show_type))
    choices: list[tuple[int, str]] = []
    if isinstance(section, dict):
        for option in section.get("options") or []:
            if isinstance(option, dict) and str(option.get("id", "")).isdecimal():
                choices.append((int(option["id"]), str(option.get("text") or option["id"])))
    if not choices:
        for option in options.get("options") or []:
            if isinstance(option, dict) and option.get("enabled", True):
                if str(option.get("id", "")).isdecimal():
                    choices.append((int(option["id"]), str(option.get("text") or option["id"])))
    if show_type == "star":
        choices = [
            (oid, "⭐" * (len(choices) - i) + f" {label}") for i, (oid, label) in enumerate(choices)
        ]
    return choices


async def _offer_survey(
    s: AsyncSession,
    texts: Texts,
    customer: Customer,
    row: ImSession,
    options: dict[str, Any],
    key: str,
) -> None:
    choices = survey_choices(options)
    if not choices:
        return
    survey = Survey(session_id=row.id)
    s.add(survey)
    await s.flush()
    buttons = []
    for option_id, label in choices:
        action = {"t": "survey", "survey_id": survey.id, "option_id": option_id}
        buttons.append([Button(text=label[:60], action=await _action(s, customer, action))])
    title = str(options.get("title") or texts.get("survey_title", customer.language_code))
    await recording.to_telegram(
        s,
        customer,
        OutgoingItem(kind="text", html=title, plain=True, buttons=buttons),
        dedup_key=f"{key}:survey",
    )


async def _robot(
    s: AsyncSession, texts: Texts, customer: Customer, m: AgentMessage, key: str
) -> bool:
    lang = customer.language_code
    buttons: list[list[Button]] = []
    for question in m.questions[:8]:
        buttons.append(
            [Button(question[:60], await _action(s, customer, {"t": "ask", "q": question}))]
        )
    if m.link:
        buttons.append([Button(texts.get("open_link", lang), url=m.link)])
    if m.question_id:
        base = {"t": "useful", "message_id": m.message_id, "question_id": m.question_id}
        buttons.append(
            [
                Button(
                    texts.get("useful", lang), await _action(s, customer, base | {"useful": True})
                ),
                Button(
                    texts.get("not_useful", lang),
                    await _action(s, customer, base | {"useful": False}),
                ),
            ]
        )
    buttons.append(
        [Button(texts.get("talk_to_human", lang), await _action(s, customer, {"t": "human"}))]
    )
    item = OutgoingItem(kind="text", html=m.content, buttons=buttons)
    return bool(await recording.to_telegram(s, customer, item, dedup_key=key))


async def _urobot(
    s: AsyncSession, texts: Texts, customer: Customer, m: AgentMessage, key: str
) -> bool:
    lang = customer.language_code
    row = await session_repo.open_for(s, customer.id)
    robot = {
        "robot_id": (row.robot_id if row else None) or 0,
        "scene_id": (row.scene_id if row else None) or 0,
        "session": m.urobot_session_id or (row.urobot_session_id if row else None) or 0,
    }
    buttons: list[list[Button]] = []
    for flow_id, title in m.flow_items[:8]:
        action = {"t": "flow", "flow_id": flow_id, **robot}
        buttons.append([Button(title[:60], await _action(s, customer, action))])
    for question in m.questions[:8]:
        buttons.append(
            [Button(question[:60], await _action(s, customer, {"t": "ask", "q": question}))]
        )
    if m.log_id:
        base = {"t": "answer_survey", "log_id": m.log_id, **robot}
        buttons.append(
            [
                Button(texts.get("useful", lang), await _action(s, customer, base | {"option": 1})),
                Button(
                    texts.get("not_useful", lang), await _action(s, customer, base | {"option": 2})
                ),
            ]
        )
    buttons.append(
        [Button(texts.get("talk_to_human", lang), await _action(s, customer, {"t": "human"}))]
    )
    item = OutgoingItem(kind="text", html=m.content, buttons=buttons)
    return bool(await recording.to_telegram(s, customer, item, dedup_key=key))


@dataclass(frozen=True)
class Recipient:
    """What showing a message needs to know of its customer."""

    id: int
    reachable: bool
    language_code: str | None


class ToTelegram:
    """The handler of inbound records: show each in the customer's chat."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        telegram: TelegramGateway,
        *,
        delivery_deadline: float,
        reads: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self.sessions = sessions
        self.reads = reads or sessions  # single reads, no transaction (store.db)
        self.telegram = telegram
        self.deadline = delivery_deadline

    async def handle(self, record: Claimed) -> Outcome:
        customer_id = record.extra.get("customer_id")
        chat_id = record.extra.get("chat_id")
        customer: Recipient | None = None
        im_session = None
        reachable = record.extra.get("customer_reachable")
        if customer_id and reachable is not None and record.kind != "queue_position":
            # Read by the claim (store.customers.RECIPIENT_LOOKUPS): no query of our own.
            customer = Recipient(
                customer_id, bool(reachable), record.extra.get("customer_language")
            )
        elif customer_id:
            async with self.reads() as s:
                found = await s.get(Customer, customer_id)
                if found is not None:
                    customer = Recipient(found.id, found.reachable, found.language_code)
                if record.kind == "queue_position" and record.payload.get("session_id"):
                    im_session = await s.get(ImSession, record.payload["session_id"])
        if customer is None or chat_id is None:
            return Fail("no chat for this record")
        if not customer.reachable:
            return Fail("chat unreachable: the user blocked the bot")
        item = OutgoingItem.from_dict(record.payload["item"])
        edit_id = None
        if im_session is not None:
            if im_session.state != SessionState.QUEUED.value:
                return Done({"last_error": "queue position outdated"})
            edit_id = im_session.queue_notice_message_id
        skip = int(record.payload.get("sent_parts", 0))
        try:
            ids = await self.telegram.show(
                int(chat_id),
                item,
                language=customer.language_code,
                edit_message_id=edit_id,
                skip=skip,
            )
        except ChatUnreachable as exc:
            await self._unreachable(customer)
            return Fail(f"chat unreachable: {exc}")
        except TransientError as exc:
            age = (utcnow() - record.created_at).total_seconds()
            if age > self.deadline:
                return Fail(f"gave up after {record.attempts} attempts: {exc}")
            sent = skip + int(getattr(exc, "sent", 0))
            progress = {"payload": record.payload | {"sent_parts": sent}} if sent > skip else {}
            return Retry(str(exc), delay=exc.retry_after, values=progress)
        except PermanentError as exc:
            return Fail(f"{type(exc).__name__}: {exc}")
        if im_session is not None and ids and edit_id is None:
            async with self.sessions.begin() as s:
                row = await s.get(ImSession, im_session.id)
                if row is not None:
                    row.queue_notice_message_id = ids[0]
        return Done({"telegram_message_ids": ",".join(str(i) for i in ids)[:200]})

    async def _unreachable(self, customer: Recipient) -> None:
        """403: mark the customer, tell Udesk they are offline (once per blocking)."""
        async with self.sessions.begin() as s:
            row = await s.get(Customer, customer.id)
            if row is None or not row.reachable:
                return
            row.reachable = False
            await recording.to_udesk(
                s,
                row,
                kind="online",
                dedup_key=f"online:blocked:{row.id}:{int(utcnow().timestamp())}",
                payload={"online": False},
            )
