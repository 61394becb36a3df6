"""Structured logs: one correlation id follows a message across both directions, and no
secret reaches a log line, whoever's logger wrote it (ours, httpx's, aiohttp's)."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from sqlalchemy import select

from bridge.logs import JsonFormatter, Redactor, correlation_id, setup_logging
from bridge.store.db import create_engine
from bridge.store.tables import InboundMessage, OutboundMessage
from bridge.udesk.push_route import push_correlation_id
from bridge.udesk.signing import signed_params
from tests.e2e.conftest import BOT_TOKEN, PUSH_SECRET, UDESK_EMAIL, UDESK_TOKEN, World, free_port
from tests.observability.conftest import running_world
from tests.processes import BridgeProcess, bridge_env

USER = {"id": 7101, "first_name": "Ivo", "language_code": "en"}
CHAT = 7101
TOKEN = "tg-7101"
OTHER_BOT_TOKEN = "987654321:another-bots-token-unused"


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """The bridge's loggers at DEBUG, as JSON lines (redacted) into a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(Redactor([BOT_TOKEN, UDESK_TOKEN, PUSH_SECRET]))
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    bridge = logging.getLogger("bridge")
    old_level = bridge.level
    root.addHandler(handler)
    bridge.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        bridge.setLevel(old_level)


def entries(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def conversation(world: World) -> tuple[int, str]:
    """The customer writes, the agent answers; returns (update_id, agent message_id)."""
    injected = world.telegram.inject_text(USER, "where is my parcel?")
    await world.eventually(lambda: world.udesk.messages_for(TOKEN), what="message in Udesk")
    await world.udesk.drain()
    message_id = await world.udesk.agent_reply(TOKEN, "On its way")
    await world.eventually(
        lambda: any("On its way" in t for t in world.texts_to(CHAT)), what="agent reply"
    )
    return injected.update_id, message_id


def done_line(lines: list[dict[str, Any]], queue: str, cid: str) -> bool:
    # Updates are mostly recorded as they are stored (bridge.telegram.intake), else by the
    # dispatcher; either way one line says so, with the update's id.
    return any(
        e.get("logger") in ("bridge.store.dispatcher", "bridge.telegram.intake")
        and e.get("queue") == queue
        and e.get("outcome") == "done"
        and e.get("correlation_id") == cid
        for e in lines
    )


async def test_one_id_follows_a_message_both_ways(
    database_url: str, tmp_path: Path, json_lines: io.StringIO
) -> None:
    async with running_world(database_url, tmp_path) as world:
        update_id, message_id = await conversation(world)
        tg, udesk = f"tg-{update_id}", f"udesk-{message_id}"[:40]
        # the dispatcher's line about the inbound record comes just after the delivery
        await world.eventually(
            lambda: done_line(entries(json_lines.getvalue()), "inbound_messages", udesk),
            what="inbound record logged",
        )
        lines = entries(json_lines.getvalue())
        assert done_line(lines, "telegram_updates", tg)
        assert done_line(lines, "outbound_messages", tg)
        # The Udesk call made for this message carries the update's id.
        sends = [
            e
            for e in lines
            if e["logger"] == "bridge.udesk" and e.get("udesk_path") == "/im/messages"
        ]
        assert sends and all(e.get("correlation_id") == tg for e in sends), sends
        # Stored with the records, for the admin API and for SQL.
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                outbound = (await conn.execute(select(OutboundMessage.correlation_id))).scalars()
                inbound = (await conn.execute(select(InboundMessage.correlation_id))).scalars()
                assert tg in set(outbound)
                assert udesk in set(inbound)
        finally:
            await engine.dispose()
        text = json_lines.getvalue()
        assert BOT_TOKEN not in text and UDESK_TOKEN not in text and PUSH_SECRET not in text


async def test_the_daemon_writes_json_lines_with_correlation_ids(
    sqlite_url: str, tmp_path: Path
) -> None:
    """``udesk-bridge run`` as a child process, LOG_LEVEL=DEBUG, LOG_FORMAT=json."""
    async with running_world(sqlite_url, tmp_path, start_bridge=False) as world:
        port = free_port()
        log_file = tmp_path / "bridge.log"
        udesk_port = int(world.udesk_url.rsplit(":", 1)[1])
        env = bridge_env(
            sqlite_url,
            tmp_path / "media2",
            port,
            udesk_port,
            world.settings.telegram_api_url,
            LOG_LEVEL="DEBUG",
        )
        world.udesk.push_url = f"http://127.0.0.1:{port}/udesk/push/{PUSH_SECRET}"
        world.bridge_url = f"http://127.0.0.1:{port}"
        process = BridgeProcess(env, port, log=log_file)
        await process.start()
        try:
            update_id, message_id = await conversation(world)
            await world.eventually(
                lambda: done_line(
                    entries(log_file.read_text()),
                    "inbound_messages",
                    f"udesk-{message_id}"[:40],
                ),
                what="inbound record logged",
            )
        finally:
            assert await process.stop() == 0
        text = log_file.read_text()
        lines = entries(text)  # every line is one JSON object
        assert {"ts", "level", "logger", "msg"} <= set(lines[0])
        assert done_line(lines, "outbound_messages", f"tg-{update_id}")
        assert any(
            e["logger"] == "bridge.udesk" and e.get("correlation_id") == f"tg-{update_id}"
            for e in lines
        )
        for secret in (BOT_TOKEN, UDESK_TOKEN, PUSH_SECRET):
            assert secret not in text


# --- redaction -------------------------------------------------------------------------


@pytest.fixture
def daemon_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """``setup_logging`` as ``udesk-bridge run`` calls it, writing into a buffer; the
    logging configuration is put back afterwards."""
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buffer)
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    noisy = {n: logging.getLogger(n).level for n in ("httpx", "httpcore", "aiohttp.access")}
    setup_logging("INFO", "json", [BOT_TOKEN, UDESK_TOKEN, PUSH_SECRET])
    try:
        yield buffer
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
        for name, level in noisy.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture
async def bot_api() -> AsyncIterator[str]:
    async def answer(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "result": {}})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_httpx_own_request_lines_are_redacted(
    daemon_logging: io.StringIO, bot_api: str
) -> None:
    logging.getLogger("httpx").setLevel(logging.INFO)  # quiet by default; here on purpose
    async with httpx.AsyncClient() as client:
        for token in (BOT_TOKEN, OTHER_BOT_TOKEN):
            response = await client.post(f"{bot_api}/bot{token}/getMe")
            assert response.status_code == 200
    lines = entries(daemon_logging.getvalue())
    requests = [e for e in lines if e["logger"] == "httpx"]
    assert len(requests) == 2, lines
    assert all("/getMe" in e["msg"] for e in requests)
    text = daemon_logging.getvalue()
    assert BOT_TOKEN not in text
    assert OTHER_BOT_TOKEN not in text  # not configured: caught by the token pattern
    assert "987654321" not in text


def test_signed_udesk_urls_are_redacted(daemon_logging: io.StringIO) -> None:
    params = signed_params(UDESK_EMAIL, UDESK_TOKEN)
    query = "&".join(f"{k}={v}" for k, v in params.items())
    url = f"https://demo.udesk.cn/open_api_v1/im/messages?{query}"
    logging.getLogger("aiohttp.client").warning("request to %s failed", url)
    try:
        raise ValueError(f"cannot connect to {url}")
    except ValueError:
        logging.getLogger("bridge.udesk").exception("boom")
    logging.getLogger("bridge.udesk").warning("call", extra={"url": url})
    text = daemon_logging.getvalue()
    for secret in (params["sign"], params["nonce"], UDESK_TOKEN):
        assert secret not in text
    lines = entries(text)
    assert "sign=<redacted>" in lines[0]["msg"] and "nonce=<redacted>" in lines[0]["msg"]
    assert "sign=<redacted>" in lines[1]["exc"]
    assert "sign=<redacted>" in lines[2]["url"]


def test_push_secret_in_aiohttp_lines_is_redacted(daemon_logging: io.StringIO) -> None:
    logging.getLogger("aiohttp.server").error(
        "Error handling request POST /udesk/push/%s", PUSH_SECRET
    )
    text = daemon_logging.getvalue()
    assert PUSH_SECRET not in text and "/udesk/push/<redacted>" in text


def test_correlation_id_in_json_and_console_lines() -> None:
    record = logging.LogRecord("bridge.x", logging.INFO, __file__, 1, "hello", None, None)
    token = correlation_id.set("tg-42")
    try:
        assert json.loads(JsonFormatter().format(record))["correlation_id"] == "tg-42"
    finally:
        correlation_id.reset(token)
    assert "correlation_id" not in json.loads(JsonFormatter().format(record))


@pytest.mark.parametrize(
    ("message_id", "expected"),
    [
        ("c424a355-2183-4e9e-a12e-4cf11c3596ab", "udesk-c424a355-2183-4e9e-a12e-4cf11c3596"),
        ("x\udc80y\x00", "udesk-x_y_"),
        (12345, "udesk-12345"),
        ("m" * 1000, "udesk-" + "m" * 34),
    ],
)
def test_push_correlation_ids_fit_the_column(message_id: object, expected: str) -> None:
    cid = push_correlation_id(message_id)
    assert cid == expected and len(cid) <= 40 and cid.isascii()
