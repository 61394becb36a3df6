"""Every endpoint that needs a secret refuses a missing or wrong one, learns nothing from it,
keeps nothing of it, and never echoes a secret back."""

from __future__ import annotations

import base64
import json

import aiohttp
import pytest
from sqlalchemy import func, select

from bridge.store.db import create_engine
from bridge.store.tables import RejectedPush
from tests.e2e.conftest import BOT_TOKEN, PUSH_SECRET, UDESK_TOKEN, World
from tests.security.conftest import ADMIN_TOKEN, WEBHOOK_SECRET, settle

WRONG_SECRETS = [
    "wrong",
    PUSH_SECRET + "x",
    PUSH_SECRET[:-1],
    PUSH_SECRET.upper(),
    " " + PUSH_SECRET,
    PUSH_SECRET + "%00",
    "%2e%2e",
    "a" * 5000,
    ADMIN_TOKEN,
    WEBHOOK_SECRET,
]
UDESK_ENDPOINTS = ["/udesk/push/{}", "/udesk/customer-token/{}", "/udesk/field-push/{}"]
SECRETS = [PUSH_SECRET, ADMIN_TOKEN, WEBHOOK_SECRET, BOT_TOKEN, UDESK_TOKEN]


def has_route(world: World, canonical: str) -> bool:
    assert world.bridge.web_app is not None
    return any(r.canonical == canonical for r in world.bridge.web_app.router.resources())


async def rejected_count(world: World) -> int:
    engine = create_engine(world.settings.database_url.get_secret_value())
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(RejectedPush)) or 0)
    finally:
        await engine.dispose()


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


async def request(
    world: World, method: str, path: str, **kwargs: object
) -> tuple[int, str, aiohttp.typedefs.LooseHeaders]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, world.bridge_url + path, **kwargs) as response,  # type: ignore[arg-type]
    ):
        text = await response.text(errors="replace")
        assert_no_secret(text)
        return response.status, text, response.headers


@pytest.mark.parametrize("endpoint", UDESK_ENDPOINTS)
async def test_udesk_endpoints_refuse_a_wrong_secret(world: World, endpoint: str) -> None:
    canonical = endpoint.format("{secret}")
    if not has_route(world, canonical):
        pytest.skip(f"POST {canonical} does not exist yet")
    push = json.dumps(
        {
            "customer_token": "tg-1",
            "assign_type": "agent",
            "messages": [{"type": "message", "message_id": "x", "data": {"content": "hi"}}],
            "timestamp": 1501124998,
            "number": 18888888888,
        }
    ).encode()
    before = await rejected_count(world)
    for secret in WRONG_SECRETS:
        status, text, _ = await request(world, "POST", endpoint.format(secret), data=push)
        assert status == 404, (secret, status, text)
    # No body is kept for a caller who does not know the secret (no disk filling).
    for secret in WRONG_SECRETS[:3]:
        status, _, _ = await request(world, "POST", endpoint.format(secret), data=b"not json")
        assert status == 404
    assert await rejected_count(world) == before
    # The right secret with a bad body: a 400 (the route is there, the secret was the key).
    status, _, _ = await request(world, "POST", endpoint.format(PUSH_SECRET), data=b"not json")
    assert status == 400
    # No other method gives anything away.
    status, _, _ = await request(world, "GET", endpoint.format(PUSH_SECRET))
    assert status in (404, 405)


async def test_admin_api_is_absent_without_admin_token(world: World) -> None:
    for method, path in [("GET", "/admin/sessions"), ("GET", "/admin/queue"),
                         ("POST", "/admin/routing/reload"), ("GET", "/admin"),
                         ("GET", "/admin/anything")]:  # fmt: skip
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer x"}):
            status, _, _ = await request(world, method, path, headers=headers)
            assert status == 404, (method, path, headers, status)


async def test_webhook_route_is_absent_in_polling_mode(world: World) -> None:
    status, _, _ = await request(
        world,
        "POST",
        "/telegram/webhook",
        json={"update_id": 1},
        headers={"X-Telegram-Bot-Api-Secret-Token": "anything"},
    )
    assert status in (404, 405)


ADMIN_PATHS = [
    ("GET", "/admin/sessions"),
    ("GET", "/admin/sessions?state=closed&limit=5"),
    ("GET", "/admin/queue"),
    ("GET", "/admin/routing"),
    ("GET", "/admin/customers/1/messages"),
    ("POST", "/admin/routing/reload"),
    ("POST", "/admin/sessions/1/close"),
    ("POST", "/admin/messages/outbound/1/retry"),
    ("POST", "/admin/messages/inbound/1/discard"),
    ("GET", "/admin/does-not-exist"),
    ("DELETE", "/admin/customers/1"),
    ("GET", "/admin"),
    ("GET", "/admin/"),
    ("GET", "/admin/../admin/sessions"),
]
WRONG_AUTH = [
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer wrong"},
    {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
    {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"},
    {"Authorization": f"Bearer {ADMIN_TOKEN.upper()}"},
    {"Authorization": f"Basic {base64.b64encode(f'admin:{ADMIN_TOKEN}'.encode()).decode()}"},
    {"Authorization": f"Token {ADMIN_TOKEN}"},
    {"Authorization": ADMIN_TOKEN},
    {"X-Admin-Token": ADMIN_TOKEN},
    {"Authorization": f"Bearer {PUSH_SECRET}"},
]


async def test_admin_api_needs_the_bearer_token(hardened: World) -> None:
    for method, path in ADMIN_PATHS:
        for headers in WRONG_AUTH:
            status, text, answer_headers = await request(hardened, method, path, headers=headers)
            assert status == 401, (method, path, headers, status, text)
            assert "Bearer" in answer_headers.get("WWW-Authenticate", "")
        status, _, _ = await request(hardened, method, f"{path}?token={ADMIN_TOKEN}")
        assert status == 401
    right = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    status, text, _ = await request(hardened, "GET", "/admin/sessions", headers=right)
    assert status == 200, text
    status, _, _ = await request(hardened, "GET", "/admin/does-not-exist", headers=right)
    assert status == 404


async def test_telegram_webhook_needs_the_secret_header(hardened: World) -> None:
    fake = {
        "update_id": 900001,
        "message": {
            "message_id": 1,
            "date": 1_700_000_000,
            "chat": {"id": 9901, "type": "private"},
            "from": {"id": 9901, "is_bot": False, "first_name": "Mallory"},
            "text": "/start forged",
        },
    }
    for headers in (
        {},
        {"X-Telegram-Bot-Api-Secret-Token": ""},
        {"X-Telegram-Bot-Api-Secret-Token": "wrong"},
        {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET[:-1]},
        {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET.upper()},
        {"X-Telegram-Bot-Api-Secret-Token": PUSH_SECRET},
        {"X-Telegram-Secret": WEBHOOK_SECRET},
        {"Authorization": f"Bearer {WEBHOOK_SECRET}"},
    ):
        status, text, _ = await request(
            hardened, "POST", "/telegram/webhook", json=fake, headers=headers
        )
        assert status == 403, (headers, status, text)
    # Bad bodies without the secret are refused before being read: 403, not 400.
    status, _, _ = await request(hardened, "POST", "/telegram/webhook", data=b"not json")
    assert status == 403
    await settle()
    assert hardened.telegram.sent(9901) == []
    assert hardened.udesk.customer_by_token("tg-9901") is None

    # The right header: stored and processed.
    ok = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
    hardened.telegram.add_user(9902, "Alice")
    real = json.loads(json.dumps(fake).replace("9901", "9902").replace("900001", "900002"))
    status, text, _ = await request(hardened, "POST", "/telegram/webhook", json=real, headers=ok)
    assert (status, text) == (200, "")
    await hardened.eventually(lambda: hardened.telegram.sent(9902), what="bot answered /start")
