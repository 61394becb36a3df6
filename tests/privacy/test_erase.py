"""Erasure against the Udesk simulator over HTTP: dry run, interruption, resumption."""

from __future__ import annotations

import re

from bridge.privacy.erase import STEPS, Eraser
from bridge.privacy.export import export_person
from tests.e2e.conftest import World
from tests.privacy.helpers import (
    ANSWER,
    PHOTO_CAPTION,
    QUESTION,
    TOKEN,
    UID,
    converse,
    erasures,
    media_files,
    person_counts,
    sessions_of,
    udesk_gateway,
)

DESTROY_PATHS = ("/im/sessions/destroy_session", "/customers/destroy_customer")
UDESK_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


async def test_export_holds_what_was_stored(world: World) -> None:
    await converse(world)
    data = await export_person(sessions_of(world), UID)
    assert data["customer"]["telegram_user_id"] == UID
    assert data["customer"]["customer_token"] == TOKEN
    assert data["customer"]["first_name"] == "Mei"
    assert [s["state"] for s in data["sessions"]] == ["agent"]
    to_udesk = str([m["payload"] for m in data["messages"]["to_udesk"]])
    to_telegram = str([m["payload"] for m in data["messages"]["to_telegram"]])
    assert QUESTION in to_udesk and PHOTO_CAPTION in to_udesk
    assert ANSWER in to_telegram
    assert QUESTION in str(data["telegram_updates"])
    [media] = data["media"]
    assert media["content_type"].startswith("image/") and media["size"] > 0
    assert "token" not in media and "path" not in media
    assert data["erasures"] == []


async def test_dry_run_changes_nothing_and_calls_nobody(world: World) -> None:
    await converse(world)
    before = await person_counts(world)
    files = await media_files(world)
    calls = len(world.udesk.calls)
    async with udesk_gateway(world) as udesk:
        plan = await Eraser(sessions_of(world), udesk, media_dir=world.settings.media_dir).plan(UID)
    assert plan.dry_run and not plan.complete and plan.erasure_id is None
    assert plan.rows == before
    assert plan.rows["customers"] == 1 and plan.rows["im_sessions"] == 1
    assert plan.rows["outbound_messages"] >= 2 and plan.rows["inbound_messages"] >= 2
    assert plan.rows["media"] == 1 and plan.rows["telegram_updates"] >= 2
    assert {str(f) for f in files} <= set(plan.files)
    assert plan.remaining == list(STEPS)
    session_id = world.udesk.session_of(TOKEN).id
    customer_id = world.udesk.customer_by_token(TOKEN).id
    assert plan.udesk_calls[0] == f"DELETE /im/sessions/{session_id}"
    assert f"customer_id={customer_id}" in plan.udesk_calls[1]
    assert plan.udesk_calls[2].endswith(f"type=token&content={TOKEN}")
    # Nothing changed, nobody was called.
    assert await person_counts(world) == before
    assert all(f.exists() for f in files)
    assert await erasures(world) == []
    assert len(world.udesk.calls) == calls
    assert world.udesk.customer_by_token(TOKEN) is not None


async def test_interrupted_erasure_completes_when_run_again(world: World) -> None:
    await converse(world)
    files = await media_files(world)
    assert files and all(f.exists() for f in files)
    udesk_customer = world.udesk.customer_by_token(TOKEN).id
    session_id = world.udesk.session_of(TOKEN).id
    world.udesk.inject_fault("/customers/destroy_customer", "http_500")
    async with udesk_gateway(world) as udesk:
        eraser = Eraser(sessions_of(world), udesk, media_dir=world.settings.media_dir)
        first = await eraser.erase(UID)
        assert not first.complete and first.transient
        assert first.remaining == ["udesk_customer"]
        assert "udesk_customer" in (first.error or "")
        # Everything up to the failure is done and stays done.
        assert set(await person_counts(world)) and not any((await person_counts(world)).values())
        assert first.rows["customers"] == 1 and first.rows["media"] == 1
        assert not any(f.exists() for f in files)
        assert session_id in world.udesk.destroyed_sessions
        assert world.udesk.customer_by_token(TOKEN) is not None
        [pending] = await erasures(world)
        assert pending.completed_at is None and pending.last_error
        assert pending.udesk_customer_id == udesk_customer and pending.customer_token == TOKEN

        world.udesk.clear_faults()
        second = await eraser.erase(UID)
    assert second.complete and second.error is None
    assert second.erasure_id == first.erasure_id
    assert world.udesk.customer_by_token(TOKEN) is None
    [done] = await erasures(world)
    assert done.completed_at is not None and set(done.steps) == set(STEPS)
    # destroy_session: always with the customer's id, over their whole time, in Udesk's format.
    [call] = world.udesk.calls_to("/im/sessions/destroy_session")
    assert call.query["customer_id"] == str(udesk_customer)
    assert UDESK_TIME.match(call.query["start_time"]) and UDESK_TIME.match(call.query["end_time"])
    assert call.query["start_time"] < call.query["end_time"]
    # destroy_customer was tried once, failed, and was not repeated after it succeeded.
    assert [c.http_status for c in world.udesk.calls_to("/customers/destroy_customer")] == [
        500,
        200,
    ]


async def test_erasing_someone_unknown_is_harmless(world: World) -> None:
    await converse(world)
    before = len(world.udesk.sessions)
    async with udesk_gateway(world) as udesk:
        report = await Eraser(sessions_of(world), udesk).erase(999_001)
    assert report.complete
    assert not any(report.rows.values())
    assert "skipped" in report.steps_done["udesk_sessions"]
    assert "skipped" in report.steps_done["udesk_customer"]
    # Never a destroy_session without a customer_id, and the others' data is untouched.
    assert world.udesk.calls_to("/im/sessions/destroy_session") == []
    assert len(world.udesk.sessions) == before
    assert (await person_counts(world))["customers"] == 1
