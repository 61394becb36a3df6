"""The purge job on real PostgreSQL and SQLite: what goes, what stays, dedup survives."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.store.db import session_factory
from bridge.store.queue import enqueue
from bridge.store.retention import Purger, Retention
from bridge.store.tables import (
    ButtonAction,
    Customer,
    ImSession,
    InboundMessage,
    Media,
    OutboundMessage,
    RejectedPush,
    Survey,
    TelegramUpdate,
    Ticket,
    utcnow,
)

DAY = dt.timedelta(days=1)
STATUSES = ("todo", "doing", "done", "failed", "discarded")
QUEUES = (
    (OutboundMessage, "outbound_payloads"),
    (InboundMessage, "inbound_payloads"),
    (TelegramUpdate, "update_payloads"),
)


def purged_total(what: str) -> float:
    return REGISTRY.get_sample_value("bridge_purged_total", {"what": what}) or 0.0


async def test_message_bodies_go_only_from_finished_records_and_dedup_keys_stay(
    engine: AsyncEngine,
) -> None:
    sessions = session_factory(engine)
    old, now = utcnow() - 40 * DAY, utcnow()
    async with sessions.begin() as s:
        for table, _ in QUEUES:
            for status in STATUSES:
                s.add(
                    table(
                        dedup_key=f"old:{status}",
                        lock=f"chat:{status}",  # one lock each: one "doing" per lock
                        kind="message",
                        payload={"html": f"secret {status}"},
                        status=status,
                        created_at=old,
                        scheduled_at=old,
                        finished_at=old if status in ("done", "failed", "discarded") else None,
                    )
                )
            s.add(
                table(
                    dedup_key="recent:done",
                    lock="chat:recent",
                    kind="message",
                    payload={"html": "recent"},
                    status="done",
                    created_at=now,
                    scheduled_at=now,
                    finished_at=now,
                )
            )
    before = {what: purged_total(what) for _, what in QUEUES}
    # Batches of 1: the job must walk on past each batch.
    purger = Purger(sessions, Retention(message_bodies=30 * 86400), batch_size=1, pause=0)
    done = await purger.purge()
    for table, what in QUEUES:
        assert done[what] == 2, what
        assert purged_total(what) - before[what] == 2
        async with sessions() as s:
            rows = {r.dedup_key: r for r in (await s.scalars(select(table))).all()}
        assert rows["old:done"].payload == {}
        assert rows["old:discarded"].payload == {}
        # Never a record that may still be delivered or that the admin may retry.
        for status in ("todo", "doing", "failed"):
            assert rows[f"old:{status}"].payload == {"html": f"secret {status}"}
            assert rows[f"old:{status}"].status == status
        assert rows["recent:done"].payload == {"html": "recent"}
        # The row, its status and times stay: dedup still works.
        assert rows["old:done"].status == "done" and rows["old:done"].finished_at is not None
        async with sessions.begin() as s:
            again = await enqueue(
                s, table, dedup_key="old:done", lock="chat:x", kind="message", payload={}
            )
        assert again is None
    # A second run finds nothing left to do.
    assert all(v == 0 for v in (await purger.purge()).values())


async def test_media_rejected_pushes_sessions_buttons_and_tickets(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    sessions = session_factory(engine)
    now = utcnow()
    files = {}
    for name in ("expired", "live"):
        path = tmp_path / name[:2] / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"jpeg")
        files[name] = path
    async with sessions.begin() as s:
        customer = Customer(
            telegram_user_id=1, chat_id=1, customer_token="tg-1", profile={}, reachable=True
        )
        s.add(customer)
        await s.flush()
        s.add_all(
            [
                Media(
                    token="expired",
                    customer_id=customer.id,
                    path=str(files["expired"]),
                    filename="a.jpg",
                    content_type="image/jpeg",
                    size=4,
                    expires_at=now - DAY,
                ),
                Media(
                    token="live",
                    customer_id=customer.id,
                    path=str(files["live"]),
                    filename="b.jpg",
                    content_type="image/jpeg",
                    size=4,
                    expires_at=now + DAY,
                ),
                RejectedPush(endpoint="push", reason="x", body=b"old", created_at=now - 20 * DAY),
                RejectedPush(endpoint="push", reason="x", body=b"new", created_at=now),
                ButtonAction(
                    customer_id=customer.id, action={"t": "old"}, created_at=now - 100 * DAY
                ),
                ButtonAction(customer_id=customer.id, action={"t": "new"}, created_at=now),
                Ticket(customer_id=customer.id, status="closed", updated_at=now - 100 * DAY),
                Ticket(customer_id=customer.id, status="open", updated_at=now - 100 * DAY),
            ]
        )
        old_closed = ImSession(
            customer_id=customer.id,
            assign_type="agent",
            state="closed",
            created_at=now - 120 * DAY,
            closed_at=now - 100 * DAY,
        )
        recent_closed = ImSession(
            customer_id=customer.id, assign_type="agent", state="closed", closed_at=now - DAY
        )
        old_open = ImSession(
            customer_id=customer.id, assign_type="agent", state="agent", created_at=now - 120 * DAY
        )
        s.add_all([old_closed, recent_closed, old_open])
        await s.flush()
        s.add_all([Survey(session_id=old_closed.id), Survey(session_id=recent_closed.id)])
    done = await Purger(sessions, Retention(), pause=0).purge()
    assert done["media"] == 1
    assert done["rejected_pushes"] == 1
    assert (done["sessions"], done["surveys"]) == (1, 1)
    assert done["button_actions"] == 1
    assert done["tickets"] == 1
    assert not files["expired"].exists() and files["live"].exists()
    async with sessions() as s:
        assert (await s.scalars(select(Media.token))).all() == ["live"]
        assert (await s.scalars(select(RejectedPush.body))).all() == [b"new"]
        states = sorted((await s.scalars(select(ImSession.state))).all())
        assert states == ["agent", "closed"]
        assert len((await s.scalars(select(Survey))).all()) == 1
        assert [a["t"] for a in (await s.scalars(select(ButtonAction.action))).all()] == ["new"]
        assert (await s.scalars(select(Ticket.status))).all() == ["open"]
        # The customer (the Telegram user ↔ Udesk customer mapping) is not the purge's.
        assert (await s.scalars(select(Customer.customer_token))).all() == ["tg-1"]
