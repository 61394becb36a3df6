"""The whole bridge with a routing file and ADMIN_TOKEN: routing reaches Udesk, admins act."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import aiohttp

from bridge.sandbox.udesk_sim import UdeskSimulator
from tests.e2e.conftest import (
    World,
    open_world,
)

TOKEN = "e2e-admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROUTING = """\
default: {assign_type: agent, group_id: 100}
rules:
  - name: russian speakers
    when: {language: [ru, uk]}
    route: {assign_type: agent, group_id: 200}
"""
IVAN = {"id": 7001, "first_name": "Ivan", "language_code": "ru"}
OLGA = {"id": 7002, "first_name": "Olga", "language_code": "uk"}


def _two_groups(udesk: UdeskSimulator) -> None:
    udesk.set_agent(1, "Tom", online=True, capacity=5, group_id=100)
    udesk.set_agent(2, "Ivan Petrovich", online=True, capacity=5, group_id=200)


def running_world(
    database_url: str, tmp_path: Path, **extra: Any
) -> contextlib.AbstractAsyncContextManager[World]:
    """The e2e world with extra settings (admin_token, routing_file) and two agent groups."""
    return open_world(database_url, tmp_path / "media", prepare=_two_groups, **extra)


async def test_admin_api_is_off_without_admin_token(database_url: str, tmp_path: Path) -> None:
    async with running_world(database_url, tmp_path) as world, aiohttp.ClientSession() as http:
        for path in ("/admin/sessions", "/admin/routing"):
            async with http.get(world.bridge_url + path, headers=AUTH) as r:
                assert r.status == 404
                assert (await r.json())["error"] == "not_found"


async def test_routing_reaches_udesk_and_admins_see_and_close_sessions(
    database_url: str, tmp_path: Path
) -> None:
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING)
    async with (
        running_world(database_url, tmp_path, admin_token=TOKEN, routing_file=routing) as world,
        aiohttp.ClientSession(base_url=world.bridge_url, headers=AUTH) as http,
    ):
        world.telegram.inject_text(IVAN, "Здравствуйте")
        await world.eventually(lambda: world.udesk.session_of("tg-7001"), what="agent session")
        requests = [c.body for c in world.udesk.calls_to("/im/sessions", "POST")]
        assert requests[-1]["group_id"] == 200 and requests[-1]["assign_type"] == "agent"
        assert world.udesk.session_of("tg-7001").agent_id == 2  # type: ignore[union-attr]

        async def agent_sessions() -> list[dict[str, Any]]:
            async with http.get("/admin/sessions?state=agent") as r:
                assert r.status == 200
                sessions = list((await r.json())["sessions"])
            # Udesk's start_session push may record the session a moment before the answer
            # to our request adds the rule that routed it: wait for both.
            return sessions if all(s["rule_name"] for s in sessions) else []

        (row,) = await world.eventually(agent_sessions, what="session listed with its rule")
        assert row["telegram_user_id"] == 7001 and row["customer_token"] == "tg-7001"
        assert row["rule_name"] == "russian speakers"

        # A broken file is refused over HTTP, and the rules in force keep routing.
        routing.write_text(ROUTING.replace("language:", "lang:"))
        async with http.post("/admin/routing/reload") as r:
            assert r.status == 422
            assert f"{routing}:4: rules[0].when: unknown key 'lang'" in (await r.json())["detail"]
        world.telegram.inject_text(OLGA, "Добрий день")
        await world.eventually(lambda: world.udesk.session_of("tg-7002"), what="second session")
        assert world.udesk.calls_to("/im/sessions", "POST")[-1].body["group_id"] == 200

        # Closing from the admin API ends it in Udesk and tells the customer.
        async with http.post(f"/admin/sessions/{row['id']}/close") as r:
            assert r.status == 200
            assert (await r.json())["session"]["state"] == "closed"
        assert world.udesk.session_of("tg-7001") is None
        await world.eventually(
            lambda: any("conversation has ended" in t for t in world.texts_to(7001)),
            what="customer told",
        )
