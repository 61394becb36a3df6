"""The admin API against a real database (PostgreSQL and SQLite): auth, reads, actions."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.admin.operations import AdminOps
from bridge.admin.reload import reload_routing
from bridge.core.routing import Router
from bridge.core.routing_file import load_router
from bridge.sandbox.udesk_sim import UdeskSimulator
from bridge.store.db import session_factory
from bridge.store.notify import TO_TELEGRAM, TO_UDESK, Waker, waking_sessions
from bridge.store.tables import (
    Customer,
    ImSession,
    InboundMessage,
    OutboundMessage,
    utcnow,
)
from bridge.udesk.budget import RateBudget
from bridge.udesk.client import UdeskClient
from bridge.udesk.gateway import UdeskGateway
from bridge.web.admin import AdminApi
from bridge.web.server import create_web_app
from tests.e2e.conftest import UDESK_EMAIL, UDESK_TOKEN, free_port, start_udesk

TOKEN = "admin-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Admin:
    client: TestClient[Any, Any]
    engine: AsyncEngine
    udesk: UdeskSimulator
    waker: Waker
    router: Router
    routing_file: Path

    async def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        async with self.client.get(path, headers=kw.pop("headers", AUTH), **kw) as r:
            return r.status, await r.json()

    async def post(self, path: str, **kw: Any) -> tuple[int, Any]:
        async with self.client.post(path, headers=kw.pop("headers", AUTH), **kw) as r:
            return r.status, await r.json()


ROUTING = """\
default: {group_id: 1}
rules:
  - name: vip customers
    when: {level: vip}
    route: {group_id: 100}
"""


@pytest.fixture
async def admin(engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[Admin]:
    routing_file = tmp_path / "routing.yaml"
    routing_file.write_text(ROUTING)
    router = load_router(routing_file)
    # The real client over HTTP to the Udesk simulator: what the admin asks of Udesk is
    # read from the simulator's recorded calls.
    udesk_port = free_port()
    udesk, udesk_runner = await start_udesk(udesk_port, "http://127.0.0.1:9/unused")
    http = aiohttp.ClientSession()
    client_udesk = UdeskClient(
        f"http://127.0.0.1:{udesk_port}/open_api_v1",
        UDESK_EMAIL,
        UDESK_TOKEN,
        session=http,
        budget=RateBudget(None),
        timeout=2,
        max_attempts=1,
    )
    waker = Waker([TO_UDESK, TO_TELEGRAM])
    sessions = waking_sessions(engine, waker)
    app = create_web_app(engine)
    ops = AdminOps(sessions, UdeskGateway(client_udesk), lambda: router.texts)
    api = AdminApi(TOKEN, ops, router, lambda: reload_routing(router, trigger="admin"))
    api.add_routes(app)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Admin(client, engine, udesk, waker, router, routing_file)
    finally:
        await client.close()
        await http.close()
        await udesk_runner.cleanup()


async def seed(engine: AsyncEngine) -> dict[str, int]:
    """Three customers: one with an agent, two queued (positions 2 and 1), one closed."""
    now = utcnow()
    async with session_factory(engine).begin() as s:
        people = [
            Customer(telegram_user_id=1000 + i, chat_id=1000 + i, customer_token=f"tok-{i}")
            for i in range(4)
        ]
        s.add_all(people)
        await s.flush()
        rows = [
            ImSession(
                customer_id=people[0].id,
                assign_type="agent",
                state="agent",
                im_sub_session_id=777,
                agent_id=1,
                agent_name="Tom",
                rule_name="vip customers",
            ),
            ImSession(
                customer_id=people[1].id,
                assign_type="agent",
                state="queued",
                queue_name="queue:1:agent:2",
                queue_position=2,
                rule_name="default",
                created_at=now - dt.timedelta(minutes=5),
            ),
            ImSession(
                customer_id=people[2].id,
                assign_type="agent",
                state="queued",
                queue_name="queue:1:agent:3",
                queue_position=1,
                rule_name="default",
            ),
            ImSession(
                customer_id=people[3].id,
                assign_type="robot",
                state="closed",
                rule_name="default",
                closed_at=now,
            ),
        ]
        s.add_all(rows)
        failed_out = OutboundMessage(
            dedup_key="tg:1000:1",
            lock="c:1",
            kind="message",
            payload={"message_id": 1, "html": "my order is late"},
            status="failed",
            attempts=7,
            last_error="gave up after 7 attempts: udesk 503",
            customer_id=people[0].id,
            created_at=now - dt.timedelta(hours=2),
            finished_at=now - dt.timedelta(hours=1),
            scheduled_at=now - dt.timedelta(hours=1),
        )
        waiting_in = InboundMessage(
            dedup_key="udesk:55",
            lock="chat:1000",
            kind="text",
            payload={"item": {"kind": "text", "html": "Hello from Tom"}},
            status="todo",
            customer_id=people[0].id,
            chat_id=1000,
            scheduled_at=now + dt.timedelta(minutes=5),
        )
        done_in = InboundMessage(
            dedup_key="udesk:54",
            lock="chat:1000",
            kind="text",
            payload={"item": {"kind": "text", "html": "Earlier reply"}},
            status="done",
            attempts=1,
            customer_id=people[0].id,
            chat_id=1000,
            finished_at=now,
        )
        s.add_all([failed_out, waiting_in, done_in])
        await s.flush()
        return {
            "agent": rows[0].id,
            "queued_second": rows[1].id,
            "queued_first": rows[2].id,
            "closed": rows[3].id,
            "failed_out": failed_out.id,
            "waiting_in": waiting_in.id,
            "done_in": done_in.id,
        }


async def test_the_token_is_required_and_checked(admin: Admin) -> None:
    async with admin.client.get("/admin/sessions") as r:
        assert r.status == 401
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await r.json())["error"] == "unauthorized"
    for header in (f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer", TOKEN):
        async with admin.client.get("/admin/sessions", headers={"Authorization": header}) as r:
            assert r.status == 401, header
            assert 'error="invalid_token"' in r.headers["WWW-Authenticate"] or header == "Bearer"
            body = await r.json()
            assert set(body) == {"error", "detail"} and TOKEN not in body["detail"]
    # Unknown admin paths do not reveal themselves without the token either.
    async with admin.client.post("/admin/whatever") as r:
        assert r.status == 401
    status, body = await admin.get("/admin/whatever")
    assert (status, body["error"]) == (404, "not_found")
    status, body = await admin.get("/admin/sessions")
    assert status == 200 and body == {"sessions": [], "count": 0}


async def test_sessions_by_state_and_the_queue_in_order(admin: Admin) -> None:
    ids = await seed(admin.engine)
    status, body = await admin.get("/admin/sessions")
    assert status == 200
    assert {s["state"] for s in body["sessions"]} == {"agent", "queued"}  # open ones by default
    status, body = await admin.get("/admin/sessions?state=agent")
    (agent,) = body["sessions"]
    assert agent["id"] == ids["agent"]
    assert agent["customer_token"] == "tok-0" and agent["telegram_user_id"] == 1000
    assert (agent["agent_id"], agent["agent_name"]) == (1, "Tom")
    assert agent["rule_name"] == "vip customers"
    assert agent["created_at"].endswith("+00:00")
    status, body = await admin.get("/admin/sessions?state=closed")
    assert [s["id"] for s in body["sessions"]] == [ids["closed"]]
    assert body["sessions"][0]["closed_at"] is not None

    status, body = await admin.get("/admin/queue")
    assert status == 200 and body["count"] == 2
    assert [(s["id"], s["queue_position"]) for s in body["sessions"]] == [
        (ids["queued_first"], 1),
        (ids["queued_second"], 2),
    ]
    status, body = await admin.get("/admin/sessions?state=lost")
    assert status == 400 and "queued" in body["detail"]


async def test_a_customers_recent_messages_with_their_delivery_state(admin: Admin) -> None:
    ids = await seed(admin.engine)
    status, body = await admin.get("/admin/customers/1000/messages?limit=50")
    assert status == 200
    assert body["customer"]["customer_token"] == "tok-0"
    by_id = {(m["direction"], m["id"]): m for m in body["messages"]}
    failed = by_id[("outbound", ids["failed_out"])]
    assert failed["status"] == "failed" and failed["attempts"] == 7
    assert failed["last_error"] == "gave up after 7 attempts: udesk 503"
    assert failed["text"] == "my order is late"
    assert failed["created_at"] and failed["finished_at"]
    assert by_id[("inbound", ids["waiting_in"])]["text"] == "Hello from Tom"
    assert by_id[("inbound", ids["done_in"])]["status"] == "done"
    # Newest first, and the limit holds.
    status, body = await admin.get("/admin/customers/1000/messages?limit=1")
    assert len(body["messages"]) == 1
    status, body = await admin.get("/admin/customers/999/messages")
    assert (status, body["error"]) == (404, "unknown_customer")


async def test_error_text_kept_before_redaction_is_shown_redacted(admin: Admin) -> None:
    """A last error written by an older release (straight into the column here) that
    quotes a Bot API URL: the admin API never shows the token in it."""
    ids = await seed(admin.engine)
    token = "7123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    url = f"https://api.telegram.org/bot{token}/sendMessage"
    async with admin.engine.begin() as conn:
        await conn.execute(
            text("UPDATE outbound_messages SET last_error = :e WHERE id = :id"),
            {"e": f"NetworkError: Cannot connect to {url}", "id": ids["failed_out"]},
        )
    status, body = await admin.get("/admin/customers/1000/messages")
    assert status == 200
    by_id = {(m["direction"], m["id"]): m for m in body["messages"]}
    failed = by_id[("outbound", ids["failed_out"])]
    assert failed["last_error"].startswith("NetworkError: Cannot connect to https://api.")
    assert token.split(":")[1] not in str(body) and "bot<redacted>" in failed["last_error"]


async def test_closing_sessions_closes_them_in_udesk_then_here(admin: Admin) -> None:
    ids = await seed(admin.engine)
    status, body = await admin.post(f"/admin/sessions/{ids['agent']}/close")
    assert status == 200
    assert body["session"]["state"] == "closed" and body["session"]["closed_at"]
    assert [c.path for c in admin.udesk.calls_to("/im/sessions/777")] == ["/im/sessions/777"]
    # The customer is told, like when an agent closes the conversation.
    async with session_factory(admin.engine)() as s:
        told = (await s.scalars(select(InboundMessage).where(InboundMessage.chat_id == 1000))).all()
    assert any("conversation has ended" in (r.payload["item"]["html"]) for r in told)
    assert admin.waker.events[TO_TELEGRAM].is_set()

    status, body = await admin.post(f"/admin/sessions/{ids['queued_second']}/close")
    assert status == 200 and body["session"]["state"] == "closed"
    (left,) = admin.udesk.calls_to("/im/sessions/close_queue")
    assert (left.query["customer_token"], left.query["queue"]) == ("tok-1", "queue:1:agent:2")
    status, body = await admin.get("/admin/queue")
    assert [s["id"] for s in body["sessions"]] == [ids["queued_first"]]

    status, body = await admin.post(f"/admin/sessions/{ids['agent']}/close")
    assert (status, body["error"]) == (409, "already_closed")
    status, body = await admin.post("/admin/sessions/424242/close")
    assert (status, body["error"]) == (404, "unknown_session")

    # Udesk unreachable: nothing changes here, the admin is told to try again.
    admin.udesk.inject_fault("/im/sessions", "http_500")
    status, body = await admin.post(f"/admin/sessions/{ids['queued_first']}/close")
    assert (status, body["error"]) == (503, "udesk_unavailable")
    status, body = await admin.get("/admin/queue")
    assert body["count"] == 1
    # Already over on Udesk's side (9200 for an unknown queue entry): closed here too.
    admin.udesk.clear_faults()
    status, body = await admin.post(f"/admin/sessions/{ids['queued_first']}/close")
    assert status == 200 and body["session"]["state"] == "closed"


async def test_retry_and_discard_records(admin: Admin) -> None:
    ids = await seed(admin.engine)
    before = utcnow()
    status, body = await admin.post(f"/admin/messages/outbound/{ids['failed_out']}/retry")
    assert status == 200
    record = body["message"]
    assert record["status"] == "todo" and record["finished_at"] is None
    assert dt.datetime.fromisoformat(record["scheduled_at"]) >= before - dt.timedelta(seconds=1)
    assert admin.waker.events[TO_UDESK].is_set()
    assert not admin.waker.events[TO_TELEGRAM].is_set()

    # Only failed records are retried.
    status, body = await admin.post(f"/admin/messages/outbound/{ids['failed_out']}/retry")
    assert (status, body["error"]) == (409, "not_failed") and "todo" in body["detail"]
    status, body = await admin.post(f"/admin/messages/inbound/{ids['done_in']}/retry")
    assert status == 409

    status, body = await admin.post(f"/admin/messages/inbound/{ids['waiting_in']}/discard")
    assert status == 200 and body["message"]["status"] == "discarded"
    status, body = await admin.post(f"/admin/messages/outbound/{ids['failed_out']}/discard")
    assert status == 200 and body["message"]["status"] == "discarded"
    async with session_factory(admin.engine)() as s:
        row = await s.get(OutboundMessage, ids["failed_out"])
        assert row is not None and row.status == "discarded"
    status, body = await admin.post(f"/admin/messages/inbound/{ids['done_in']}/discard")
    assert (status, body["error"]) == (409, "not_discardable")
    status, body = await admin.post("/admin/messages/inbound/999999/discard")
    assert (status, body["error"]) == (404, "unknown_message")
    status, body = await admin.post(f"/admin/messages/sideways/{ids['done_in']}/retry")
    assert (status, body["error"]) == (404, "unknown_direction")


async def test_routing_in_force_and_reload(admin: Admin) -> None:
    status, body = await admin.get("/admin/routing")
    assert status == 200
    assert body["source"] == str(admin.routing_file)
    assert body["default"] == {"assign_type": "agent", "group_id": 1}
    assert [r["name"] for r in body["rules"]] == ["vip customers"]
    assert body["rules"][0]["when"] == {"level": ["vip"]}
    assert body["business_hours"] is None
    loaded_at = body["loaded_at"]

    admin.routing_file.write_text(ROUTING.replace("level: vip", "levl: vip"))
    status, body = await admin.post("/admin/routing/reload")
    assert (status, body["error"]) == (422, "routing_file_invalid")
    assert f"{admin.routing_file}:4: rules[0].when: unknown key 'levl'" in body["detail"]
    status, body = await admin.get("/admin/routing")
    assert body["loaded_at"] == loaded_at and body["rules"][0]["when"] == {"level": ["vip"]}

    admin.routing_file.write_text(
        ROUTING + 'business_hours: {timezone: Europe/Moscow, weekly: {mon-fri: "09:00-18:00"}}\n'
    )
    status, body = await admin.post("/admin/routing/reload")
    assert status == 200 and body["status"] == "reloaded"
    assert body["routing"]["business_hours"]["timezone"] == "Europe/Moscow"
    assert admin.router.business_hours is not None
