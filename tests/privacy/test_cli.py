"""``udesk-bridge customers export|erase`` as real processes against the running world."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import sys
from typing import Any

from tests.e2e.conftest import BOT_TOKEN, PUSH_SECRET, UDESK_EMAIL, UDESK_TOKEN, World
from tests.privacy.helpers import (
    ANSWER,
    PHOTO_CAPTION,
    QUESTION,
    TOKEN,
    UID,
    USER,
    converse,
    erasures,
    media_files,
    person_counts,
)

BRIDGE = [sys.executable, "-m", "bridge.cli"]


def _env(world: World) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "UDESK_API_URL": f"{world.udesk_url}/open_api_v1",
        "UDESK_EMAIL": UDESK_EMAIL,
        "UDESK_API_TOKEN": UDESK_TOKEN,
        "UDESK_PUSH_SECRET": PUSH_SECRET,
        "UDESK_RATE_LIMIT": "unlimited",
        "PUBLIC_URL": "https://bridge.example.com",
        "DATABASE_URL": world.settings.database_url.get_secret_value(),
        "MEDIA_DIR": str(world.settings.media_dir),
    }


async def run(world: World, *args: str) -> tuple[int, str, str]:
    """Run the CLI without blocking the loop the simulators serve on; stdin is not a TTY."""
    process = await asyncio.create_subprocess_exec(
        *BRIDGE,
        *args,
        env=_env(world),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_export_prints_everything_as_json(world: World) -> None:
    await converse(world)
    code, out, err = await run(world, "customers", "export", "--telegram-user", str(UID))
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    assert data["customer"]["customer_token"] == TOKEN
    assert QUESTION in json.dumps(data["messages"]["to_udesk"], ensure_ascii=False)
    assert ANSWER in json.dumps(data["messages"]["to_telegram"], ensure_ascii=False)
    assert len(data["sessions"]) == 1 and len(data["media"]) == 1
    assert data["held"] is True and data["note"] is None
    # Someone the bridge never saw: an empty answer, not an error.
    code, out, err = await run(world, "customers", "export", "--telegram-user", "424242")
    assert code == 0 and "holds nothing" in err
    data = json.loads(out)
    assert data["held"] is False and data["customer"] is None
    assert data["note"] == "the bridge holds nothing about this person"


async def test_export_after_erasure_shows_nothing_of_the_person(world: World) -> None:
    await converse(world)
    code, out, err = await run(world, "customers", "export", "--telegram-user", str(UID))
    assert code == 0, err
    before = json.loads(out)
    [session] = before["sessions"]
    # What would identify them or say what they wrote, in any field of the export.
    traces = [
        TOKEN,
        USER["first_name"],
        USER["last_name"],
        QUESTION,
        ANSWER,
        PHOTO_CAPTION,
        str(before["customer"]["udesk_customer_id"]),
        str(session["im_sub_session_id"]),
    ]
    assert all(trace in out for trace in traces), "the traces are really in an export"
    # The export never shows where media files are; a finished erasure used to.
    traces += [path.name for path in await media_files(world)]

    code, _out, err = await run(world, "customers", "erase", "--telegram-user", str(UID), "--yes")
    assert code == 0, err
    code, out, err = await run(world, "customers", "export", "--telegram-user", str(UID))
    assert code == 0, err
    assert [trace for trace in traces if trace in out + err] == []
    data = json.loads(out)
    assert set(data) == set(before), "the same top-level keys"
    assert data["held"] is False and data["customer_token"] is None and data["customer"] is None
    assert data["note"] == (
        "the bridge holds nothing about this person but the record that it erased them (erasures)"
    )
    assert "holds nothing" in err
    emptied = {k: v for k, v in data.items() if isinstance(v, list) and k != "erasures"}
    assert emptied and not any(emptied.values())
    assert data["messages"] == {"to_udesk": [], "to_telegram": []}
    [erasure] = data["erasures"]
    assert erasure["completed_at"] is not None and erasure["telegram_user_id"] == UID
    # Cleared in the database, not just left out of the export.
    [row] = await erasures(world)
    assert (row.customer_token, row.udesk_customer_id, row.chat_id) == ("", None, None)
    assert (row.first_seen_at, row.udesk_open, row.media_files) == (None, None, [])


async def test_erase_refuses_without_a_terminal_and_dry_run_changes_nothing(
    world: World,
) -> None:
    await converse(world)
    before = await person_counts(world)
    code, _out, err = await run(world, "customers", "erase", "--telegram-user", str(UID))
    assert code == 2 and "refusing" in err and "--yes" in err
    code, out, err = await run(
        world, "customers", "erase", "--telegram-user", str(UID), "--dry-run", "--json"
    )
    assert code == 0, err
    plan = json.loads(out)
    assert plan["dry_run"] is True and plan["rows"] == before
    assert any("destroy_customer" in call for call in plan["udesk_calls"])
    code, out, err = await run(
        world, "customers", "erase", "--telegram-user", str(UID), "--dry-run"
    )
    assert code == 0 and "Dry run" in out and "customers: 1" in out
    assert await person_counts(world) == before
    assert await erasures(world) == []
    assert world.udesk.calls_to("/customers/destroy_customer") == []


async def test_erase_is_resumed_by_running_it_again(world: World) -> None:
    await converse(world)
    files = await media_files(world)
    world.udesk.inject_fault("/customers/destroy_customer", "http_500")
    args = ("customers", "erase", "--telegram-user", str(UID), "--yes", "--json")
    code, out, err = await run(world, *args)
    assert code == 1, err
    first = json.loads(out)
    assert first["complete"] is False and first["remaining"] == ["udesk_customer"]
    assert "run the same command again" in err
    assert not any((await person_counts(world)).values())
    assert not any(f.exists() for f in files)
    assert world.udesk.customer_by_token(TOKEN) is not None

    world.udesk.clear_faults()
    code, out, err = await run(world, *args)
    assert code == 0, err
    second = json.loads(out)
    assert second["complete"] is True and second["erasure_id"] == first["erasure_id"]
    assert world.udesk.customer_by_token(TOKEN) is None
    [erasure] = await erasures(world)
    assert erasure.completed_at is not None and erasure.requested_by == "cli"


async def test_erase_asks_on_a_terminal(world: World) -> None:
    await converse(world)

    async def answer(reply: str) -> tuple[int, str]:
        master, slave = pty.openpty()
        try:
            process = await asyncio.create_subprocess_exec(
                *BRIDGE,
                "customers",
                "erase",
                "--telegram-user",
                str(UID),
                env=_env(world),
                stdin=slave,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            os.write(master, reply.encode())
            out, err = await asyncio.wait_for(process.communicate(), timeout=60)
        finally:
            os.close(master)
            os.close(slave)
        assert process.returncode is not None
        return process.returncode, out.decode() + err.decode()

    code, text = await answer("no\n")
    assert code == 2 and "Type yes to confirm" in text and "nothing erased" in text
    assert (await person_counts(world))["customers"] == 1
    code, text = await answer("yes\n")
    assert code == 0, text
    assert "Erased Telegram user" in text
    assert not any((await person_counts(world)).values())
    assert world.udesk.customer_by_token(TOKEN) is None
