"""A Bot API that answers 302 (a proxy or captive portal in front of api.telegram.org) is
not followed: every Bot API URL carries the bot token in its path, and following would hand
it to another host.  The failure is kept as the record's last error."""

from __future__ import annotations

import json

import aiohttp

from tests.e2e.conftest import World
from tests.security.conftest import ADMIN_TOKEN, TargetServer

USER = {"id": 8701, "first_name": "Portal", "language_code": "en"}
TOKEN = "tg-8701"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def admin_messages(world: World) -> tuple[str, list[dict[str, object]]]:
    path = f"/admin/customers/{USER['id']}/messages"
    async with (
        aiohttp.ClientSession() as http,
        http.get(world.bridge_url + path, headers=AUTH) as response,
    ):
        assert response.status == 200
        answer = await response.text()
    return answer, json.loads(answer)["messages"]


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
