"""The admin endpoints for access and erasure, and the /forget command, end to end."""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bridge.privacy.export import export_person
from bridge.store.tables import Customer, OutboundMessage
from tests.e2e.conftest import World
from tests.privacy.conftest import ADMIN_TOKEN
from tests.privacy.helpers import (
    ANSWER,
    QUESTION,
    TOKEN,
    UID,
    USER,
    converse,
    erasures,
    media_files,
    person_counts,
    sessions_of,
    settle,
)


async def admin(
    world: World, method: str, path: str, body: Any = None, token: str = ADMIN_TOKEN
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method,
            f"{world.bridge_url}{path}",
            headers=headers,
            data=None if body is None else (body if isinstance(body, bytes) else json.dumps(body)),
        ) as response,
    ):
        return response.status, await response.json()


async def test_admin_export_and_erase(pworld: World) -> None:
    world = pworld
    await converse(world)
    person = f"/admin/customers/{UID}"
    assert (await admin(world, "GET", f"{person}/export", token="wrong"))[0] == 401
    status, data = await admin(world, "GET", f"{person}/export")
    assert status == 200 and data["customer"]["customer_token"] == TOKEN
    assert QUESTION in json.dumps(data["messages"], ensure_ascii=False)

    before = await person_counts(world)
    status, plan = await admin(world, "POST", f"{person}/erase", {"dry_run": True})
    assert status == 200 and plan["dry_run"] is True and plan["rows"] == before
    assert await person_counts(world) == before
    for bad in (b"{not json", {"dry_run": "yes"}, [1]):
        status, error = await admin(world, "POST", f"{person}/erase", bad)
        assert status == 400 and error["error"] == "bad_request"

    world.udesk.inject_fault("/customers/destroy_customer", "http_500")
    status, error = await admin(world, "POST", f"{person}/erase", {"dry_run": False})
    assert status == 503 and error["error"] == "erasure_incomplete"
    assert "udesk_customer" in error["detail"] and "POST again" in error["detail"]
    assert not any((await person_counts(world)).values())
    world.udesk.clear_faults()
    status, report = await admin(world, "POST", f"{person}/erase", {"dry_run": False})
    assert status == 200 and report["complete"] is True
    assert world.udesk.customer_by_token(TOKEN) is None
    [erasure] = await erasures(world)
    assert erasure.requested_by == "admin"
    # The export now says so: nothing left but the record of the erasure.
    status, data = await admin(world, "GET", f"{person}/export")
    assert status == 200 and data["customer"] is None and data["messages"]["to_udesk"] == []
    assert [e["completed_at"] is not None for e in data["erasures"]] == [True]
    assert data["held"] is False and data["customer_token"] is None
    assert TOKEN not in json.dumps(data)


async def test_forget_command_erases_after_confirmation(pworld: World) -> None:
    world = pworld
    await converse(world)
    files = await media_files(world)
    world.telegram.inject_command(USER, "/forget")
    confirm = await world.eventually(
        lambda: [m for m in world.telegram.sent(UID) if "cannot be undone" in (m.text or "")],
        what="confirmation",
    )
    # Until confirmed, nothing happens.
    await settle(world)
    assert (await person_counts(world))["customers"] == 1
    world.telegram.inject_callback(USER, confirm[0].message_id, button_text="Yes, erase my data")
    await world.eventually(
        lambda: "Your data has been erased" in " ".join(world.texts_to(UID)), what="erased"
    )
    [erasure] = await erasures(world)
    assert erasure.completed_at is not None and erasure.requested_by == "telegram"
    assert world.udesk.customer_by_token(TOKEN) is None
    assert not any(f.exists() for f in files)
    async with sessions_of(world)() as s:
        assert await s.scalar(select(Customer).where(Customer.telegram_user_id == UID)) is None
        # Only the erase record itself is left, blanked: ids, no content.
        rows = (await s.scalars(select(OutboundMessage))).all()
        assert [(r.kind, r.status, r.payload) for r in rows] == [("erase", "done", {})]
    counts = await person_counts(world)
    assert counts["outbound_messages"] == 0 and counts["customers"] == 0
    data = await export_person(sessions_of(world), UID)
    assert data["held"] is False and TOKEN not in json.dumps(data)


async def test_forget_is_off_by_default(world: World) -> None:
    await converse(world)
    world.telegram.inject_command(USER, "/forget")
    await settle(world)
    assert not any("cannot be undone" in (m.text or "") for m in world.telegram.sent(UID))
    assert (await person_counts(world))["customers"] == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_message_content_and_phone_numbers_are_not_logged_at_info(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await converse(world)
    world.telegram.inject_contact(USER, "+86 138 0013 8000")
    await world.eventually(
        lambda: any("138" in str(m.data) for m in world.udesk.messages_for(TOKEN)),
        what="contact",
    )
    await settle(world)
    logged = "\n".join(
        f"{r.getMessage()} {r.exc_text or ''}"
        for r in caplog.records
        if r.levelno >= logging.INFO and not r.name.startswith("bridge.sandbox")
    )
    assert logged  # the bridge did log something
    for secret in (QUESTION, ANSWER, "0013 8000", "13800138000", "Mei"):
        assert secret not in logged
