"""The ``erasures`` table: one row per erasure request, with the steps done so far.

The row keeps what the remaining steps need after the customer row is gone (the Udesk
customer id and token, the time range of their sessions, the session to close, the media
files to remove), so running the erasure again completes it; once complete, those are
cleared and the row is only the record of the erasure (``erase.forget_identity``).
Migrations 0002 and 0004.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bridge.store.tables import Base, ErrorText, utcnow


class Erasure(Base):
    __tablename__ = "erasures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    customer_token: Mapped[str] = mapped_column(String(64))
    udesk_customer_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    chat_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # The earliest created_at of the customer and their sessions: destroy_session's range.
    first_seen_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    # An open Udesk session to close first: {"im_sub_session_id": n} or {"queue_name": q}.
    udesk_open: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    media_files: Mapped[list[str]] = mapped_column(JSON, default=list)
    # step name -> ISO time it was done (or skipped, with why), see bridge.privacy.erase.
    steps: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    requested_by: Mapped[str] = mapped_column(String(40), default="cli")
    last_error: Mapped[str | None] = mapped_column(ErrorText, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
