"""``GET /readyz``: the database, the Udesk credentials, Telegram's webhook."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
from aiohttp import test_utils

from bridge.store.db import create_engine
from bridge.telegram.readiness import TelegramWebhookCheck
from bridge.web.keys import READINESS_CHECKS
from bridge.web.server import create_web_app
from tests.e2e.conftest import World, free_port
from tests.observability.conftest import DB_PASSWORD, WorldFactory, get, readyz


async def test_ready_with_everything_answering(world: World) -> None:
    status, body = await readyz(world)
    assert status == 200, body
    assert body["status"] == "ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["udesk"] == "ok"
    assert body["down"] == [] and body["degraded"] == []
    assert "telegram_webhook" not in body["checks"]  # polling mode
    # The credentials were checked with one signed call at start, not at every probe.
    calls = len(world.udesk.calls_to("/im/agent_status"))
    for _ in range(3):
        assert (await readyz(world))[0] == 200
    assert len(world.udesk.calls_to("/im/agent_status")) == calls == 1


async def test_invalid_credentials_make_it_unready_but_it_runs(make_world: WorldFactory) -> None:
    async with make_world(udesk_api_token="not-the-right-token") as world:
        status, body = await readyz(world)
        assert status == 503, body
        assert body["checks"]["udesk"] == "invalid credentials (1001)"
        assert body["down"] == ["udesk"]
        assert body["checks"]["database"] == "ok"
        assert "not-the-right-token" not in str(body)
        assert (await get(f"{world.bridge_url}/healthz"))[0] == 200


async def test_udesk_unreachable_is_reported_not_fatal(make_world: WorldFactory) -> None:
    closed = free_port()
    async with make_world(udesk_api_url=f"http://127.0.0.1:{closed}/open_api_v1") as world:
        status, body = await readyz(world)
        assert status == 200, body
        assert body["checks"]["udesk"] == "unreachable"
        assert body["degraded"] == ["udesk"] and body["down"] == []


async def _readyz_of_unstarted_app(database_url: str) -> tuple[int, dict[str, Any], float]:
    engine = create_engine(database_url)
    try:
        app = create_web_app(engine)
        async with test_utils.TestClient(test_utils.TestServer(app)) as client:
            started = time.monotonic()
            response = await client.get("/readyz")
            return response.status, await response.json(), time.monotonic() - started
    finally:
        await engine.dispose()


async def test_database_refusing_connections(closed_port_db: str) -> None:
    status, body, _ = await _readyz_of_unstarted_app(closed_port_db)
    assert status == 503
    assert body["status"] == "not ready"
    assert body["down"] == ["database"]
    assert body["checks"]["database"].startswith("down: ")
    assert DB_PASSWORD not in str(body)


async def test_database_hanging(black_hole_db: str) -> None:
    status, body, took = await _readyz_of_unstarted_app(black_hole_db)
    assert status == 503 and body["down"] == ["database"]
    assert body["checks"]["database"] == "down: TimeoutError"
    assert took < 3.5


async def test_webhook_mode_reports_getwebhookinfo(make_world: WorldFactory) -> None:
    async with make_world(
        telegram_mode="webhook", telegram_webhook_secret="webhook-secret-for-tests"
    ) as world:
        status, body = await readyz(world)
        assert status == 200, body
        assert body["checks"]["telegram_webhook"] == "ok (pending_update_count=0)"

        # Telegram failed to deliver a moment ago: reported, but still ready.
        assert world.telegram.webhook is not None
        world.telegram.webhook.last_error_date = int(time.time()) - 5
        world.telegram.webhook.last_error_message = "Connection refused"
        assert world.bridge.web_app is not None
        check = world.bridge.web_app[READINESS_CHECKS]["telegram_webhook"]
        assert isinstance(check, TelegramWebhookCheck)
        status, body = await readyz(world)
        assert "Connection refused" not in body["checks"]["telegram_webhook"]  # cached ~30 s
        check.ttl = 0
        status, body = await readyz(world)
        assert status == 200, body
        assert body["degraded"] == ["telegram_webhook"]
        result = body["checks"]["telegram_webhook"]
        assert "last_error_message='Connection refused'" in result
        assert "pending_update_count=0" in result
        assert world.settings.telegram_bot_token.get_secret_value() not in str(body)


async def test_readyz_and_metrics_are_plain_gets(world: World) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{world.bridge_url}/readyz") as r:
            assert r.status == 405
        async with http.get(f"{world.bridge_url}/metrics") as r:
            assert r.status == 200
