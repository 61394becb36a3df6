"""The tables: what the bridge must remember across restarts and replicas.

Three of them are durable queues with one shape (``QueueColumns``), modelled on
procrastinate's ``procrastinate_jobs``: a status, attempts, ``scheduled_at`` for backoff, a
``lock`` key (one customer or chat) with a partial unique index so at most one record per key
is in flight, a lease that lets another worker take over from a dead one, ``failed`` as the
dead letter, and a unique ``dedup_key`` that is the final word on duplicates.

- ``telegram_updates``: raw updates, stored before Telegram is told we have them.
- ``outbound_messages``: customer → Udesk (messages and session commands, in order).
- ``inbound_messages``: → Telegram (agent, robot and bot messages, in order per chat).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from bridge.logs import redact

# Stable constraint names make alembic batch migrations on SQLite predictable.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

UtcDateTime = DateTime(timezone=True)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ErrorText(TypeDecorator[str]):
    """Text of an error kept for operators (``last_error``, a rejected push's ``reason``):
    redacted like the log on the way in, and again on the way out for rows written before.
    Error text quotes exceptions, and those quote URLs; every Bot API URL carries the bot
    token.  Being the column's type, it covers every statement that writes the column, the
    prepared ones in ``store.queue`` too (their parameters carry the columns' types)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return redact(value) if value else value

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return redact(value) if value else value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, dt.datetime: UtcDateTime}


class RecordStatus(enum.StrEnum):
    TODO = "todo"  # waiting, possibly until scheduled_at (backoff)
    DOING = "doing"  # claimed by a worker whose lease has not expired
    DONE = "done"  # delivered
    FAILED = "failed"  # dead letter: gave up, kept for the admin to retry or discard
    DISCARDED = "discarded"  # deliberately not delivered (admin, or recorded only)


IN_FLIGHT = (RecordStatus.TODO.value, RecordStatus.DOING.value)


class QueueColumns:
    """Columns shared by the three durable queues."""

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    lock: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=RecordStatus.TODO.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    scheduled_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    worker: Mapped[str | None] = mapped_column(String(80), default=None)
    last_error: Mapped[str | None] = mapped_column(ErrorText, default=None)
    correlation_id: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        name = cls.__tablename__  # type: ignore[attr-defined]
        doing = text("status = 'doing'")
        waiting = text("status = 'todo'")
        in_flight = text("status IN ('todo', 'doing')")
        return (
            # One record per lock in flight: the database enforces per-customer order even
            # if two dispatchers in two processes race for the same customer.
            Index(
                f"uq_{name}_lock_doing",
                "lock",
                unique=True,
                postgresql_where=doing,
                sqlite_where=doing,
            ),
            Index(
                f"ix_{name}_todo", "scheduled_at", postgresql_where=waiting, sqlite_where=waiting
            ),
            Index(f"ix_{name}_lock_id", "lock", "id"),
            # The claim's probe for an earlier waiting record of the same lock: waiting
            # records only, however long the customer's history (migration 0003).
            Index(
                f"ix_{name}_lock_inflight",
                "lock",
                "id",
                postgresql_where=in_flight,
                sqlite_where=in_flight,
            ),
            Index(f"ix_{name}_status", "status"),
        )


class TelegramUpdate(QueueColumns, Base):
    __tablename__ = "telegram_updates"


class OutboundMessage(QueueColumns, Base):
    """Customer → Udesk.  ``customer_id`` is ours (customers.id)."""

    __tablename__ = "outbound_messages"
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), default=None
    )


class InboundMessage(QueueColumns, Base):
    """→ Telegram.  ``udesk_message_id`` is null for the bot's own texts."""

    __tablename__ = "inbound_messages"
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), default=None
    )
    chat_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    telegram_message_ids: Mapped[str | None] = mapped_column(String(200), default=None)


class Customer(Base):
    """A Telegram user and their Udesk identity."""

    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    customer_token: Mapped[str] = mapped_column(String(64), unique=True)
    udesk_customer_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    udesk_created: Mapped[bool] = mapped_column(Boolean, default=False)
    udesk_synced_name: Mapped[str | None] = mapped_column(String(300), default=None)
    first_name: Mapped[str | None] = mapped_column(String(200), default=None)
    last_name: Mapped[str | None] = mapped_column(String(200), default=None)
    username: Mapped[str | None] = mapped_column(String(100), default=None)
    language_code: Mapped[str | None] = mapped_column(String(20), default=None)
    chat_type: Mapped[str] = mapped_column(String(20), default="private")
    start_param: Mapped[str | None] = mapped_column(String(200), default=None)
    phone: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    email: Mapped[str | None] = mapped_column(String(200), default=None)
    level: Mapped[str | None] = mapped_column(String(50), default=None)
    tags: Mapped[str | None] = mapped_column(Text, default=None)
    profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reachable: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SessionState(enum.StrEnum):
    ROBOT = "robot"
    UROBOT = "urobot"
    QUEUED = "queued"
    AGENT = "agent"
    CLOSED = "closed"


OPEN_STATES = (
    SessionState.ROBOT.value,
    SessionState.UROBOT.value,
    SessionState.QUEUED.value,
    SessionState.AGENT.value,
)


class ImSession(Base):
    """One Udesk IM session of one customer; at most one is open per customer."""

    __tablename__ = "im_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    assign_type: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(10))
    im_sub_session_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    queue_name: Mapped[str | None] = mapped_column(String(200), default=None)
    queue_position: Mapped[int | None] = mapped_column(Integer, default=None)
    queue_notice_message_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    agent_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    agent_name: Mapped[str | None] = mapped_column(String(200), default=None)
    robot_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    scene_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    urobot_session_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    survey_options: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    rule_name: Mapped[str | None] = mapped_column(String(200), default=None)
    preview_disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(default=None)

    __table_args__ = (
        # The database, not a cache, guarantees one open session per customer.
        Index(
            "uq_im_sessions_open_customer",
            "customer_id",
            unique=True,
            postgresql_where=text("state <> 'closed'"),
            sqlite_where=text("state <> 'closed'"),
        ),
        Index("ix_im_sessions_im_sub_session_id", "im_sub_session_id"),
    )


class Survey(Base):
    """A satisfaction survey offered after a session; answered once."""

    __tablename__ = "surveys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("im_sessions.id", ondelete="CASCADE"))
    answered_option_id: Mapped[int | None] = mapped_column(Integer, default=None)
    # The steps before it is sent: the option tapped, the "resolved?" answer (0 resolved,
    # 1 not, as resolved_state_v2), and a remark the chosen option requires.
    chosen_option_id: Mapped[int | None] = mapped_column(Integer, default=None)
    resolved: Mapped[int | None] = mapped_column(Integer, default=None)
    awaiting_remark: Mapped[bool] = mapped_column(Boolean, default=False)
    remark: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class Media(Base):
    """A customer's file, served to agents under an unguessable, expiring link."""

    __tablename__ = "media"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), default=None
    )
    path: Mapped[str] = mapped_column(String(500))
    filename: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[dt.datetime] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Ticket(Base):
    """A leave-a-message ticket opened for a customer."""

    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    udesk_ticket_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    status: Mapped[str] = mapped_column(String(20), default="open")
    last_reply_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    no_agent_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RejectedPush(Base):
    """A body on a Udesk endpoint we could not parse, kept for inspection."""

    __tablename__ = "rejected_pushes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(ErrorText)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ButtonAction(Base):
    """What an inline button does when tapped; its id is the button's callback data.

    Telegram allows only 64 bytes of callback data, and data coming back from a client must
    not be trusted, so the button carries an id and the action lives here, tied to the
    customer it was shown to.
    """

    __tablename__ = "button_actions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    action: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class KeyValue(Base):
    """Small bits of process-independent state (e.g. the polling offset)."""

    __tablename__ = "bridge_state"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
