"""``GET /media/{token}``: no path traversal, no guessing, no expired links, no bot token."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from urllib.parse import urlsplit

import aiohttp
from sqlalchemy import select, update

from bridge.store.db import create_engine
from bridge.store.tables import Media
from tests.e2e.conftest import BOT_TOKEN, World

USER = {"id": 8301, "first_name": "Pic", "language_code": "en"}
TOKEN = "tg-8301"
LEAK_MARKERS = (b"root:", b"[Unit]", b"PRAGMA", b"SQLite format", b"BEGIN", BOT_TOKEN.encode())


async def raw_get(world: World, raw_path: str) -> tuple[int, bytes]:
    """One HTTP/1.1 request with the path exactly as given (no client normalisation)."""
    port = urlsplit(world.bridge_url).port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"GET {raw_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode(
                "latin-1"
            )
        )
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body


async def media_rows(world: World) -> list[Media]:
    engine = create_engine(world.settings.database_url.get_secret_value())
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(select(Media))).all())  # type: ignore[arg-type]
    finally:
        await engine.dispose()


async def expire_all(world: World) -> None:
    engine = create_engine(world.settings.database_url.get_secret_value())
    try:
        async with engine.begin() as conn:
            past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            await conn.execute(update(Media).values(expires_at=past))
    finally:
        await engine.dispose()


async def test_media_links_resist_traversal_guessing_and_expiry(world: World) -> None:
    world.telegram.inject_photo(USER, caption="my photo")
    messages = await world.eventually(
        lambda: [m for m in world.udesk.messages_for(TOKEN) if "/media/" in str(m.data)],
        what="the photo's media link in Udesk",
    )
    rows = await media_rows(world)
    assert rows
    token = rows[0].token
    link = f"{world.bridge_url}/media/{token}"
    assert any(link in str(m.data) for m in messages)
    # The link given to Udesk never contains the Telegram file URL (it has the bot token).
    for m in world.udesk.messages_for(TOKEN):
        assert BOT_TOKEN not in str(m.data)
        assert "/file/bot" not in str(m.data)

    status, body = await raw_get(world, f"/media/{token}")
    assert status == 200 and body.startswith(b"\xff\xd8")  # the JPEG

    attempts = [
        "/media/../../etc/passwd",
        "/media/..%2F..%2F..%2Fetc%2Fpasswd",
        "/media/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/media/%252e%252e%252fetc%252fpasswd",
        "/media/....//....//etc/passwd",
        "/media/..\\..\\..\\etc\\passwd",
        "/media/%2F%2Fetc%2Fpasswd",
        "/media//etc/passwd",
        "/media/%00",
        "/media/.%00./etc/passwd",
        f"/media/{token}/../../../../etc/passwd",
        f"/media/{token}%2F..%2F..%2F..%2Fetc%2Fpasswd",
        f"/media/{token[:2]}/{token}",
        f"/media/{token}/",
        f"/media/{token}x",
        f"/media/{token[:-1]}",
        f"/media/{token.upper()}",
        f"/media/{token};.jpg",
        "/media/" + "A" * 64,
        "/media/" + "A" * 20,
        "/media/" + "a" * 10_000,
        "/media/" + "%41" * 3000,
        "/media/bridge.db",
        "/media/..",
        "/media/.",
        "/media/",
        "/media",
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/static/../../etc/passwd",
    ] + [f"/media/{secrets.token_urlsafe(32)}" for _ in range(50)]
    for path in attempts:
        status, body = await raw_get(world, path)
        assert status in (404, 400, 414, 431) and status != 200, (path, status)
        assert not any(marker in body for marker in LEAK_MARKERS), (path, body[:200])
        if status != 404:  # only aiohttp's own refusal of a malformed request line
            assert len(path) > 4000 or "%00" in path, (path, status)

    # Expired: the same link answers 404, like an unknown one.
    await expire_all(world)
    status, body = await raw_get(world, f"/media/{token}")
    assert status == 404 and not body.startswith(b"\xff\xd8")
    async with aiohttp.ClientSession() as http, http.get(link) as response:
        assert response.status == 404
        assert await response.json() == {"error": "not_found", "detail": ""}
