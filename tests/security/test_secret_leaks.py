"""No secret ever leaves the bridge: a full conversation with the real daemon as a child
process (``udesk-bridge run``, LOG_LEVEL=DEBUG, its own redacting log handler), then every
log line, every HTTP answer, /metrics, the media links and every request the bridge made to
Udesk and Telegram are searched for the bot token, the Udesk API token, the push secret, the
admin token, the webhook secret and the database password."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy.engine import make_url

from bridge.sandbox.telegram_sim import TelegramSimulator
from bridge.sandbox.udesk_sim import UdeskSimulator
from tests.e2e.conftest import BOT_TOKEN, PUSH_SECRET, UDESK_EMAIL, UDESK_TOKEN, free_port
from tests.processes import BridgeProcess, bridge_env

ADMIN = "admin-token-SECRET-for-leak-test-7f3a9c"
WEBHOOK = "webhook-SECRET-for-leak-test-1b2c3d"
DB_PASSWORD = "db-password-SECRET-4242"
USER = {"id": 8601, "first_name": "Leak", "language_code": "en"}
TOKEN = "tg-8601"
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99"
    b"=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)
SECRETS = {
    "bot token": BOT_TOKEN,
    "bot token (secret part)": BOT_TOKEN.split(":", 1)[1],
    "Udesk API token": UDESK_TOKEN,
    "push secret": PUSH_SECRET,
    "admin token": ADMIN,
    "webhook secret": WEBHOOK,
    "database password": DB_PASSWORD,
}


def leaks(text: str, allowed: tuple[str, ...] = ()) -> list[str]:
    return [name for name, value in SECRETS.items() if value in text and name not in allowed]


@pytest.fixture
async def files() -> AsyncIterator[str]:
    """Agents' attachments (Udesk's CDN)."""

    async def serve(_request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    app = web.Application()
    app.router.add_get("/{name}", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_no_secret_in_logs_answers_metrics_or_urls(
    pg_url: str, tmp_path: Path, files: str
) -> None:
    # PostgreSQL here trusts local connections: a password in the URL is accepted and ignored.
    database_url = make_url(pg_url).set(password=DB_PASSWORD).render_as_string(hide_password=False)
    port, udesk_port = free_port(), free_port()
    udesk_requests: list[str] = []

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        udesk_requests.append(f"{request.method} {request.path_qs} {await request.text()}")
        return await handler(request)

    udesk = UdeskSimulator(
        email=UDESK_EMAIL,
        api_token=UDESK_TOKEN,
        push_url=f"http://127.0.0.1:{port}/udesk/push/{PUSH_SECRET}",
    )
    udesk.app.middlewares.append(record)  # raw URLs and bodies of the bridge's calls
    udesk_runner = web.AppRunner(udesk.app, access_log=None)
    await udesk_runner.setup()
    await web.TCPSite(udesk_runner, "127.0.0.1", udesk_port).start()
    udesk.set_agent(1, "Tom", capacity=5)
    telegram = TelegramSimulator(bot_token=BOT_TOKEN, bot_username="leak_test_bot")
    root = await telegram.start()
    log = tmp_path / "bridge.log"
    env = bridge_env(
        database_url,
        tmp_path / "media",
        port,
        udesk_port,
        root,
        LOG_LEVEL="DEBUG",
        LOG_FORMAT="json",
        ADMIN_TOKEN=ADMIN,
        TELEGRAM_WEBHOOK_SECRET=WEBHOOK,
        ALBUM_DEBOUNCE="0.2s",
    )
    bridge = BridgeProcess(env, port, log=log)
    answers: list[str] = []
    base = f"http://127.0.0.1:{port}"

    async def call(method: str, path: str, **kwargs: Any) -> tuple[int, str]:
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, base + path, **kwargs) as r,
        ):
            text = await r.text(errors="replace")
            answers.append(f"{method} {path.replace(PUSH_SECRET, '<push>')} {r.status} {text}")
            answers.append(json.dumps(dict(r.headers)))
            return r.status, text

    async def wait(predicate: Any, timeout: float = 15.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            assert asyncio.get_running_loop().time() < deadline, "timed out"
            await asyncio.sleep(0.05)

    started = asyncio.get_running_loop().time()
    try:
        await bridge.start()
        print(f"bridge up at {asyncio.get_running_loop().time() - started:.1f}s")
        telegram.inject_command(USER, "/start", "sales")
        telegram.inject_text(USER, "hello, my token=abc and bot123:xyz")
        await wait(lambda: udesk.messages_for(TOKEN))
        await udesk.drain()
        await wait(lambda: len(telegram.sent(USER["id"])) >= 2)

        # Customer media: a /media/ link to Udesk, never the Telegram file URL.
        telegram.inject_photo(USER, caption="a photo")
        await wait(lambda: any("/media/" in json.dumps(m.data) for m in udesk.messages_for(TOKEN)))
        media_links = [
            word.strip('"\\,')
            for m in udesk.messages_for(TOKEN)
            for word in json.dumps(m.data).split()
            if "/media/" in word
        ]
        for link in media_links:
            path = "/media/" + link.split("/media/", 1)[1].split('"')[0].split("\\")[0]
            await call("GET", path)

        # Agent side: text, HTML, an image; faults on both sides so errors get logged.
        udesk.inject_fault("/im/messages", "http_500", count=1)
        telegram.inject_text(USER, "second message")
        await udesk.agent_reply(TOKEN, "<b>bold</b> reply")
        await udesk.agent_reply(TOKEN, f"{files}/pic.png", type="image")
        telegram.inject_fault("sendMessage", "http_500", count=1)
        await udesk.agent_reply(TOKEN, "after a Telegram error")
        await wait(lambda: "after a Telegram error" in [m.text for m in telegram.sent(USER["id"])])
        await wait(lambda: len(udesk.messages_for(TOKEN)) >= 3)

        # Pushes: bad, wrong secret, and one that crashes the handler today (a 500 is logged).
        await call("POST", f"/udesk/push/{PUSH_SECRET}", data=b"{not json")
        await call("POST", "/udesk/push/wrong-secret", data=b"{}")
        await call(
            "POST",
            f"/udesk/push/{PUSH_SECRET}",
            json={"assign_type": "urobot", "messages": {"sessionId": 1, "logId": "²"}},
        )
        await call("POST", f"/udesk/customer-token/{PUSH_SECRET}", json={"number": "+1 555"})
        await call("POST", f"/udesk/field-push/{PUSH_SECRET}", json={"customer": {}})

        # Operators: admin API (right and wrong token), health, metrics.
        good = {"Authorization": f"Bearer {ADMIN}"}
        await call("GET", "/admin/sessions", headers=good)
        await call("GET", f"/admin/customers/{USER['id']}/messages", headers=good)
        await call("GET", "/admin/routing", headers=good)
        await call("POST", "/admin/routing/reload", headers=good)
        await call("GET", "/admin/sessions", headers={"Authorization": "Bearer wrong"})
        await call("GET", "/healthz")
        await call("GET", "/readyz")
        await call("GET", "/metrics")

        await udesk.close_session(TOKEN, survey=True)
        await wait(lambda: len(telegram.sent(USER["id"])) >= 6)
        telegram.inject_command(USER, "/end")
        await asyncio.sleep(0.5)
    finally:
        print(f"conversation done at {asyncio.get_running_loop().time() - started:.1f}s")
        await bridge.stop()
        await telegram.stop()
        await udesk_runner.cleanup()

    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    assert len(lines) > 20 and any('"DEBUG"' in line for line in lines)
    found = {f"log: {line[:300]}": leaks(line) for line in lines}
    found |= {f"answer: {a[:300]}": leaks(a) for a in answers}
    found |= {f"media link: {link}": leaks(link) for link in media_links}
    for call_ in udesk.calls:
        text = f"{call_.method} {call_.path} {call_.query} {json.dumps(call_.body, default=str)}"
        found[f"Udesk call: {text[:300]}"] = leaks(text)
    assert any("/im/messages" in r for r in udesk_requests)
    found |= {f"Udesk request: {r[:300]}": leaks(r) for r in udesk_requests}
    for request in telegram.calls():
        text = json.dumps(request.params, default=str)
        found[f"Telegram call {request.method}: {text[:300]}"] = leaks(text)
    found = {where: names for where, names in found.items() if names}
    assert not found, json.dumps(found, indent=1, ensure_ascii=False)[:4000]
