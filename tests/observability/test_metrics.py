"""``GET /metrics`` after a small conversation through the real bridge."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from aiohttp import test_utils
from sqlalchemy import text

from bridge.metrics import endpoint_template
from bridge.store.db import create_engine
from bridge.udesk.errors import UdeskConnectionError, UdeskTimeoutError, result_label
from bridge.web.server import create_web_app
from tests.e2e.conftest import World
from tests.observability.conftest import (
    delta,
    get,
    has,
    parse,
    scrape,
    value,
    wait_for_metrics,
)

USER = {"id": 7001, "first_name": "Mia", "language_code": "en"}
CHAT = 7001
TOKEN = "tg-7001"
DIRECTIONS = ("updates", "to_udesk", "to_telegram")


async def test_a_conversation_is_counted(world: World) -> None:
    before = await scrape(world)
    world.telegram.inject_text(USER, "hello, metrics")
    await world.eventually(lambda: world.udesk.messages_for(TOKEN), what="message in Udesk")
    await world.udesk.drain()
    await world.udesk.agent_reply(TOKEN, "Hi Mia")
    await world.eventually(
        lambda: any("Hi Mia" in t for t in world.texts_to(CHAT)), what="agent reply"
    )

    def counted(s: dict) -> bool:  # type: ignore[type-arg]
        return (
            delta(
                before,
                s,
                "bridge_messages_total",
                direction="to_udesk",
                kind="message",
                outcome="done",
            )
            >= 1
            and delta(
                before,
                s,
                "bridge_messages_total",
                direction="to_telegram",
                kind="text",
                outcome="done",
            )
            >= 1
        )

    after = await wait_for_metrics(world, counted, "messages counted")
    assert (
        delta(
            before,
            after,
            "bridge_messages_total",
            direction="updates",
            kind="update",
            outcome="done",
        )
        >= 1
    )
    for direction, kind in (
        ("updates", "update"),
        ("to_udesk", "message"),
        ("to_telegram", "text"),
    ):
        assert (
            delta(before, after, "bridge_delivery_seconds_count", direction=direction, kind=kind)
            >= 1
        )
    assert (
        delta(
            before,
            after,
            "bridge_udesk_calls_total",
            method="POST",
            endpoint="/im/messages",
            code="1000",
        )
        >= 1
    )
    assert (
        delta(
            before, after, "bridge_udesk_call_seconds_count", method="POST", endpoint="/im/messages"
        )
        >= 1
    )
    assert delta(before, after, "bridge_udesk_push_ack_seconds_count") >= 1
    assert delta(before, after, "bridge_udesk_pushes_total", status="200") >= 1

    # Gauges read from the database on scrape.
    assert value(after, "bridge_metrics_database_up") == 1
    for direction in DIRECTIONS:
        for status in ("pending", "in_flight", "failed"):
            assert has(after, "bridge_queue_records", direction=direction, status=status)
        assert has(after, "bridge_queue_oldest_pending_seconds", direction=direction)
    assert value(after, "bridge_sessions", state="agent") >= 1
    for state in ("robot", "urobot", "queued"):
        assert has(after, "bridge_sessions", state=state)
    # The rate budget of this bridge.
    assert has(after, "bridge_udesk_budget_waits_total", priority="message")
    assert has(after, "bridge_udesk_budget_wait_seconds_total", priority="poll")


async def test_labels_stay_bounded(world: World) -> None:
    world.telegram.inject_text(USER, "labels")
    await world.eventually(lambda: world.udesk.messages_for(TOKEN), what="message in Udesk")
    status, body, content_type = await get(f"{world.bridge_url}/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    samples = parse(body)
    endpoints = {dict(labels)["endpoint"] for (_, labels) in samples if "endpoint" in dict(labels)}
    assert "/im/messages" in endpoints
    assert all(re.fullmatch(r"(/([a-z_]+|\{id\}))+", e) for e in endpoints), endpoints
    values = {v for (_, labels) in samples for _, v in labels}
    assert not any(TOKEN in v or str(CHAT) in v for v in values), values


async def test_telegram_flood_control_is_counted(world: World) -> None:
    before = await scrape(world)
    world.telegram.inject_fault("sendMessage", "retry_after", retry_after=1)
    world.telegram.inject_command(USER, "/start")
    await world.eventually(lambda: world.texts_to(CHAT), timeout=15, what="greeting after 429")
    after = await wait_for_metrics(
        world,
        lambda s: (
            delta(
                before,
                s,
                "bridge_messages_total",
                direction="to_telegram",
                kind="text",
                outcome="done",
            )
            >= 1
        ),
        "greeting counted",
    )
    assert delta(before, after, "bridge_telegram_rate_limited_total") >= 1
    assert delta(before, after, "bridge_telegram_retry_after_seconds_total") >= 1
    assert (
        delta(
            before,
            after,
            "bridge_messages_total",
            direction="to_telegram",
            kind="text",
            outcome="retry",
        )
        >= 1
    )


async def test_metrics_answer_quickly_when_the_database_hangs(black_hole_db: str) -> None:
    engine = create_engine(black_hole_db)
    try:
        async with test_utils.TestClient(test_utils.TestServer(create_web_app(engine))) as client:
            started = time.monotonic()
            response = await client.get("/metrics")
            body = await response.text()
            assert response.status == 200
            assert time.monotonic() - started < 2.5
            samples = parse(body)
            assert value(samples, "bridge_metrics_database_up") == 0
            assert not any(name == "bridge_queue_records" for name, _ in samples)
            assert any(name.startswith("bridge_udesk_push") for name, _ in samples)
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/im/sessions/123/message_preview", "/im/sessions/{id}/message_preview"),
        ("/im/sessions/42", "/im/sessions/{id}"),
        ("/tickets/9/replies", "/tickets/{id}/replies"),
        ("/customers/get_customer", "/customers/get_customer"),
        ("/customers/tg-6001", "/customers/{id}"),
        ("/customers/AbC?type=token", "/customers/{id}"),
    ],
)
def test_endpoint_templates_have_no_ids(path: str, template: str) -> None:
    assert endpoint_template(path) == template


def test_udesk_result_labels() -> None:
    assert result_label(1000) == "1000"
    assert result_label(None, UdeskTimeoutError("x")) == "timeout"
    assert result_label(None, UdeskConnectionError("x")) == "connection_error"


async def test_a_transaction_left_open_is_reported(database_url: str) -> None:
    """An idle transaction on the database (a forgotten psql ``BEGIN``, a bug) stops
    PostgreSQL's cleanup; its age is on ``/metrics`` so an operator can alert on it."""
    engine = create_engine(database_url)
    name = "bridge_database_oldest_transaction_seconds"
    try:
        async with test_utils.TestClient(test_utils.TestServer(create_web_app(engine))) as client:

            async def samples() -> dict:  # type: ignore[type-arg]
                response = await client.get("/metrics")
                assert response.status == 200
                return parse(await response.text())

            if engine.dialect.name != "postgresql":
                quiet = await samples()
                assert value(quiet, "bridge_metrics_database_up") == 1
                assert not has(quiet, name)  # PostgreSQL's notion; absent, not a made-up 0
                return
            assert value(await samples(), name) < 1.0
            async with engine.connect() as idle:
                await idle.execute(text("SELECT 1"))  # begins a transaction, left open
                await asyncio.sleep(1.2)
                assert value(await samples(), name) >= 1.0
                await idle.commit()
            assert value(await samples(), name) < 1.0
    finally:
        await engine.dispose()
