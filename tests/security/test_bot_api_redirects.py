"""A Bot API that answers 302 (a proxy or captive portal in front of api.telegram.org) is
not followed: every Bot API URL carries the bot token in its path, and following would hand
it to another host.  The failure is kept as the record's last error, and neither that text,
as stored or as the admin API shows it, nor anything else the bridge keeps, has the token,
although the portal's answer quotes the URL it was asked for."""

from __future__ import annotations

import json
from urllib.parse import quote

import aiohttp
from sqlalchemy import text

from bridge.store.db import create_engine
from tests.e2e.conftest import BOT_TOKEN, World
from tests.security.conftest import ADMIN_TOKEN, TargetServer

USER = {"id": 8701, "first_name": "Portal", "language_code": "en"}
TOKEN = "tg-8701"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TOKEN_FORMS = {
    "bot token": BOT_TOKEN,
    "bot token, percent-encoded": quote(BOT_TOKEN, safe=""),
    "its secret half": BOT_TOKEN.split(":", 1)[1],
}


def token_in(found: str) -> list[str]:
    return [name for name, form in TOKEN_FORMS.items() if form in found]


async def admin_messages(world: World) -> tuple[str, list[dict[str, object]]]:
    path = f"/admin/customers/{USER['id']}/messages"
    async with (
        aiohttp.ClientSession() as http,
        http.get(world.bridge_url + path, headers=AUTH) as response,
    ):
        assert response.status == 200
        answer = await response.text()
    return answer, json.loads(answer)["messages"]


async def stored_errors(world: World) -> list[str]:
    """The error text as it is in the database (plain SQL, past any column type)."""
    engine = create_engine(world.settings.database_url.get_secret_value())
    try:
        async with engine.connect() as conn:
            found: list[str] = []
            for table in ("inbound_messages", "outbound_messages", "telegram_updates"):
                rows = await conn.execute(
                    text(f"SELECT last_error FROM {table} WHERE last_error IS NOT NULL")
                )
                found += [row[0] for row in rows]
            rows = await conn.execute(text("SELECT reason FROM rejected_pushes"))
            return found + [row[0] for row in rows]
    finally:
        await engine.dispose()


async def agent_reply_meets_a_portal(hardened: World, target: TargetServer) -> str:
    """A customer talks to an agent; then the Bot API sits behind a portal redirecting every
    sendMessage to ``target``, and the agent replies.  Returns the reply's last error as the
    admin API shows it, once there is one."""
    hardened.telegram.inject_text(USER, "hello")
    await hardened.eventually(lambda: hardened.udesk.messages_for(TOKEN), what="first message")
    await hardened.udesk.drain()
    await hardened.eventually(lambda: len(hardened.texts_to(USER["id"])) >= 2, what="agent")
    hardened.telegram.inject_fault(
        "sendMessage", "redirect", count=None, location=f"http://127.0.0.2:{target.port}/login"
    )
    await hardened.udesk.agent_reply(TOKEN, "through the portal")

    async def failed_reply() -> str | None:
        _, records = await admin_messages(hardened)
        errors = [r["last_error"] for r in records if r["direction"] == "inbound"]
        return next((str(e) for e in errors if e), None)

    return await hardened.eventually(failed_reply, timeout=15, what="the reply's last error")


async def test_the_bot_does_not_follow_a_redirect(hardened: World, target: TargetServer) -> None:
    error = await agent_reply_meets_a_portal(hardened, target)
    # The portal (another host) never saw a request, so never the token in its path.
    assert target.requests == []
    assert hardened.telegram.stats["fault.redirect"] >= 1
    assert "302" in error, error
    # The portal gone, the reply arrives.
    hardened.telegram.clear_faults()
    await hardened.eventually(
        lambda: "through the portal" in hardened.texts_to(USER["id"]), timeout=20, what="reply"
    )
    assert target.requests == []


async def test_no_stored_or_shown_error_has_the_bot_token(
    hardened: World, target: TargetServer
) -> None:
    # The portal's 302 quotes the URL asked for, token and all (percent-encoded), and PTB's
    # error quotes the portal's answer: the error text the bridge keeps starts out with it.
    error = await agent_reply_meets_a_portal(hardened, target)
    assert "return_to" in error and "<redacted" in error, error
    answer, _ = await admin_messages(hardened)
    assert not token_in(answer), answer
    stored = await stored_errors(hardened)
    assert any("302" in e for e in stored)
    leaks = {e[:300]: token_in(e) for e in stored if token_in(e)}
    assert not leaks, leaks
