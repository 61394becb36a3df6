"""Agents' attachment URLs, end to end: Udesk simulator → bridge → Telegram simulator.

The URL in an agent's image/file/audio/video push is untrusted (the push comes from the
internet).  The bridge first hands it to Telegram; when Telegram cannot fetch it, the bridge
fetches it itself, and that must never reach the bridge's own network (SSRF), never read a
local file, and never block the customer's later messages.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bridge.store.db import create_engine
from bridge.store.tables import InboundMessage
from tests.e2e.conftest import PUSH_SECRET, World
from tests.security.conftest import TargetServer

KINDS = ["image", "file", "audio", "video"]


async def connect(world: World, user_id: int) -> str:
    """A customer who wrote and has an agent; returns their customer_token."""
    token = f"tg-{user_id}"
    world.telegram.inject_text({"id": user_id, "first_name": "C", "language_code": "en"}, "hi")
    await world.eventually(lambda: world.udesk.messages_for(token), what=f"{token} first message")
    await world.udesk.drain()
    await world.eventually(lambda: len(world.texts_to(user_id)) >= 2, what=f"{token} joined")
    return token


async def inbound_errors(world: World) -> dict[str, str]:
    engine = create_engine(world.settings.database_url.get_secret_value())
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(InboundMessage.payload, InboundMessage.status, InboundMessage.last_error)
            )
            found = {}
            for payload, status, error in rows:
                item = (payload or {}).get("item") or payload or {}
                url = item.get("url") if isinstance(item, dict) else None
                if url:
                    found[str(url)] = f"{status}: {error}"
            return found
    finally:
        await engine.dispose()


def relative_to_cwd(path: Path) -> str:
    return os.path.relpath(path, os.getcwd())


def telegram_files(world: World) -> list[bytes]:
    return [f.data for m in world.telegram.sent() for f in (m.files or [])]


async def test_agent_attachments_never_reach_private_addresses(
    hardened: World, target: TargetServer, telegram_cannot_fetch_urls: list[str]
) -> None:
    chat = 8401
    token = await connect(hardened, chat)
    p = target.port
    urls = [
        f"http://127.0.0.1:{p}/a.png",
        f"http://127.0.0.2:{p}/b.png",
        f"http://localhost:{p}/c.png",
        f"http://[::1]:{p}/d.png",
        f"http://2130706433:{p}/e.png",
        f"http://0x7f000001:{p}/f.png",
        f"http://[::ffff:127.0.0.1]:{p}/g.png",
        f"http://0.0.0.0:{p}/h.png",
        f"https://127.0.0.1:{p}/i.png",
        "http://10.0.0.1/j.png",
        "http://192.168.1.1/k.png",
        "http://172.16.0.1/l.png",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        f"ftp://127.0.0.1:{p}/m.png",
        f"gopher://127.0.0.1:{p}/_GET%20/n.png",
        f"dict://127.0.0.1:{p}/o",
        "data:image/png;base64,iVBORw0KGgo=",
        "javascript:alert(1)",
    ]
    for i, url in enumerate(urls):
        await hardened.udesk.agent_reply(token, url, type=KINDS[i % len(KINDS)])
    # An album: several images in one push (sendMediaGroup, then the bridge's own fetch).
    album = {
        "customer_token": token,
        "assign_type": "agent",
        "messages": [
            {"type": "image", "message_id": f"album-{i}", "agent_name": "Tom",
             "data": {"content": f"http://127.0.0.1:{p}/album{i}.png"}}
            for i in range(3)
        ],
    }  # fmt: skip
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{hardened.bridge_url}/udesk/push/{PUSH_SECRET}", json=album) as response,
    ):
        assert response.status == 200
    await hardened.udesk.agent_reply(token, "after the attachments")

    await hardened.eventually(
        lambda: "after the attachments" in hardened.texts_to(chat), timeout=15, what="last text"
    )
    assert target.requests == []
    assert not any(b"INTERNAL-SECRET-CONTENT" in data for data in telegram_files(hardened))
    assert telegram_cannot_fetch_urls  # Telegram was asked first, so the bridge did fetch
    errors = await inbound_errors(hardened)
    for url in urls:
        assert url in errors, url
        assert errors[url].startswith("failed"), (url, errors[url])
        assert (
            "refusing" in errors[url] or "not http" in errors[url] or "invalid URL" in errors[url]
        ), (url, errors[url])


async def test_dns_rebinding_does_not_reach_private_addresses(
    hardened: World, target: TargetServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat = 8402
    token = await connect(hardened, chat)
    real = socket.getaddrinfo
    answers = {"count": 0}

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.public.test":
            answers["count"] += 1
            ip = "93.184.216.34" if answers["count"] == 1 else "127.0.0.1"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, int(port or 80)))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    await hardened.udesk.agent_reply(
        token, f"http://rebind.public.test:{target.port}/x.png", type="file"
    )
    await hardened.udesk.agent_reply(token, "after the rebinding attempt")
    await hardened.eventually(
        lambda: "after the rebinding attempt" in hardened.texts_to(chat), timeout=15
    )
    assert target.requests == []


async def test_a_local_path_as_attachment_url_is_never_read(world: World, tmp_path: Path) -> None:
    """PTB's parse_file_input uploads any string naming an existing local file (absolute or
    relative to the cwd): an agent's "URL" must never reach it as a string."""
    secret = tmp_path / "bridge.env"
    secret.write_bytes(b"TELEGRAM_BOT_TOKEN=LOCAL-FILE-SECRET\n")
    chat = 8403
    token = await connect(world, chat)
    relative = relative_to_cwd(secret)
    for kind, path in (("file", str(secret)), ("image", relative), ("video", str(secret))):
        await world.udesk.agent_reply(token, path, type=kind)
    album = {
        "customer_token": token,
        "assign_type": "agent",
        "messages": [
            {"type": kind, "message_id": f"lfi-album-{i}", "data": {"content": path}}
            for i, (kind, path) in enumerate([("video", str(secret)), ("video", relative)])
        ],
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{world.bridge_url}/udesk/push/{PUSH_SECRET}", json=album) as response,
    ):
        assert response.status == 200
    await world.udesk.agent_reply(token, "after the paths")
    await world.eventually(lambda: "after the paths" in world.texts_to(chat), timeout=15)
    leaked = [d for d in telegram_files(world) if b"LOCAL-FILE-SECRET" in d]
    assert not leaked


async def test_a_bad_attachment_url_does_not_block_the_chat(world: World) -> None:
    poison = {
        8411: ("file", "file:///etc/passwd"),
        8412: ("image", "http://[::1/x.png"),
        8413: ("image", "http://example.com:99999/x.png"),
        8414: ("file", "http://127.0.0.1\\@93.184.216.34/x.png"),
    }
    tokens = {chat: await connect(world, chat) for chat in poison}
    for chat, (kind, url) in poison.items():
        await world.udesk.agent_reply(tokens[chat], url, type=kind)
        await world.udesk.agent_reply(tokens[chat], "still here")

    def blocked() -> list[str]:
        return [
            url for chat, (_, url) in poison.items() if "still here" not in world.texts_to(chat)
        ]

    try:
        await world.eventually(lambda: not blocked(), timeout=4, what="the later messages")
    except AssertionError:
        raise AssertionError(f"chats blocked by: {json.dumps(blocked())}") from None
