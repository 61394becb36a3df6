"""Who the customer is: the call center's customer_token lookup, Udesk's field push, the
profile kept in sync, and signed deep links to an existing Udesk customer.  Real HTTP on
both sides (the simulators and the real bridge), PostgreSQL and SQLite."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bridge.app import BridgeApp
from bridge.core import deeplinks
from bridge.sandbox.telegram_sim import TelegramSimulator
from bridge.sandbox.udesk_sim import shapes
from bridge.sandbox.udesk_sim.state import Customer as SimCustomer
from bridge.store.tables import Customer, ImSession, RejectedPush
from tests.e2e.conftest import (
    BOT_TOKEN,
    PUSH_SECRET,
    World,
    bridge_settings,
    free_port,
    start_udesk,
)

LINK_SECRET = "deep-link-secret-for-tests"
ROUTING = """\
default: {assign_type: agent}
rules:
  - name: vip customers
    when: {level: vip}
    route: {assign_type: agent, group_id: 100}
"""

WorldFactory = Callable[..., Awaitable[World]]


@pytest.fixture
async def make_world(database_url: str, tmp_path: Path) -> AsyncIterator[WorldFactory]:
    """Like ``world``, with extra settings (``bridge_settings(**extra)``)."""
    async with AsyncExitStack() as stack:

        async def start(**extra: Any) -> World:
            bridge_port, udesk_port = free_port(), free_port()
            bridge_url = f"http://127.0.0.1:{bridge_port}"
            udesk, runner = await start_udesk(udesk_port, f"{bridge_url}/udesk/push/{PUSH_SECRET}")
            stack.push_async_callback(runner.cleanup)
            udesk.set_agent(1, "Tom", online=True, capacity=5)
            telegram = TelegramSimulator(bot_token=BOT_TOKEN, bot_username="udesk_test_bot")
            tg_root = await telegram.start()
            stack.push_async_callback(telegram.stop)
            settings = bridge_settings(
                database_url, tmp_path / "media", bridge_port, udesk_port, tg_root, **extra
            )
            bridge = BridgeApp(settings, run_migrations=False)
            await bridge.start()
            stack.push_async_callback(bridge.stop)
            return World(
                udesk, telegram, bridge, bridge_url, f"http://127.0.0.1:{udesk_port}", settings
            )

        yield start


async def post(
    world: World, endpoint: str, body: Any, secret: str = PUSH_SECRET
) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    url = f"{world.bridge_url}/udesk/{endpoint}/{secret}"
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=data, headers={"Content-Type": "application/json"}) as response,
    ):
        text = await response.text()
        return response.status, json.loads(text) if text else None


async def customer_row(world: World, user_id: int) -> Customer | None:
    assert world.bridge.parts is not None
    async with world.bridge.parts.sessions() as s:
        return await s.scalar(select(Customer).where(Customer.telegram_user_id == user_id))


async def rejected(world: World, endpoint: str) -> list[bytes]:
    assert world.bridge.parts is not None
    async with world.bridge.parts.sessions() as s:
        rows = await s.scalars(select(RejectedPush).where(RejectedPush.endpoint == endpoint))
        return [r.body for r in rows]


async def bridge_knows_session(world: World, im_sub_session_id: int) -> bool:
    assert world.bridge.parts is not None
    async with world.bridge.parts.sessions() as s:
        found = await s.scalar(
            select(ImSession.id).where(ImSession.im_sub_session_id == im_sub_session_id)
        )
        return found is not None


def sessions_opened(world: World) -> list[dict[str, Any]]:
    return [c.body for c in world.udesk.calls_to("/im/sessions", "POST") if c.code in (1000, 2001)]


# --- call center: customer_token by phone number --------------------------------------------


async def test_customer_token_for_every_spelling_of_a_shared_number(world: World) -> None:
    user = {"id": 7101, "first_name": "Wang", "language_code": "zh"}
    # Telegram sends an own contact's number with its country code but without "+".
    world.telegram.inject_contact(user, "8618888888888")

    async def stored() -> str | None:
        row = await customer_row(world, 7101)
        return row.phone if row is not None else None

    assert await world.eventually(stored, what="phone stored") == "+8618888888888"

    for number in (
        18888888888,
        "18888888888",
        "+86 188-8888-8888",
        "8618888888888",
        "188 8888 8888",
        "0086 188 8888 8888",
    ):
        status, answer = await post(
            world, "customer-token", {"timestamp": 1501124998, "number": number}
        )
        assert (status, answer) == (200, {"customer_token": "tg-7101"}), number

    status, answer = await post(world, "customer-token", {"timestamp": 1, "number": "13900000000"})
    assert status == 404 and answer["error"] == "not_found"

    status, _ = await post(world, "customer-token", {"number": 18888888888}, secret="wrong")
    assert status == 404

    status, answer = await post(world, "customer-token", b"{not json")
    assert status == 400 and answer["error"] == "bad_request"
    status, _ = await post(world, "customer-token", {"timestamp": 1})
    assert status == 400
    assert await rejected(world, "customer-token") == [b"{not json", b'{"timestamp": 1}']


async def test_a_contact_that_is_not_ones_own_is_not_stored(world: World) -> None:
    user = {"id": 7102, "first_name": "Li"}
    world.telegram.inject_contact(user, "+86 138 0013 8000", own=False, first_name="Friend")
    await world.eventually(lambda: world.udesk.messages_for("tg-7102"), what="contact sent")
    row = await customer_row(world, 7102)
    assert row is not None and row.phone is None
    status, _ = await post(world, "customer-token", {"timestamp": 1, "number": "13800138000"})
    assert status == 404


# --- field push ----------------------------------------------------------------------------


async def test_field_push_level_routes_the_next_session(
    make_world: WorldFactory, tmp_path: Path
) -> None:
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING)
    world = await make_world(routing_file=str(routing))
    world.udesk.set_agent(2, "Jerry", online=True, capacity=5, group_id=100)
    user = {"id": 7201, "first_name": "Ada", "last_name": "L", "username": "ada"}
    token = "tg-7201"

    world.telegram.inject_text(user, "hello")
    await world.eventually(lambda: world.udesk.session_of(token), what="first session")
    assert "group_id" not in sessions_opened(world)[0]
    first = world.udesk.session_of(token)
    assert first is not None
    await world.eventually(lambda: bridge_knows_session(world, first.id), what="session stored")

    # The agent makes them a VIP in the IM workspace: the push carries the session id.
    push = {
        "customer": {
            "nick_name": "Ada Lovelace",
            "level": "vip",
            "tags": "premium, early",
            "cellphone": [{"content": "138 0013 8000"}, {"content": "+7 916 123-45-67"}],
            "email": "ada@example.com",
            "other_emails": ["ada@work.example.com"],
            "organization": "Analytical Engines",
            "lang": "en",
            "TextField_1": "likes tea",
            "SelectField_2": [{"value": "0", "text": "Beijing"}],
        },
        "im_sub_session_id": first.id,
    }
    status, answer = await post(world, "field-push", push)
    assert (status, answer) == (200, {"code": 1000, "error": ""})  # nothing left blank
    row = await customer_row(world, 7201)
    assert row is not None
    assert (row.level, row.tags, row.email, row.phone) == (
        "vip",
        "premium,early",
        "ada@example.com",
        "+8613800138000",
    )
    udesk = row.profile["udesk"]
    assert udesk["nick_name"] == "Ada Lovelace"
    assert udesk["cellphones"] == ["+8613800138000", "+79161234567"]
    assert udesk["organization"] == "Analytical Engines"
    assert udesk["custom_fields"] == {
        "TextField_1": "likes tea",
        "SelectField_2": [{"value": "0", "text": "Beijing"}],
    }
    assert (row.first_name, row.last_name) == ("Ada", "L")  # Telegram's names stay

    # The next session is routed by the new level.
    await world.udesk.close_session(token, survey=False)
    await world.eventually(
        lambda: any("ended" in t.lower() for t in world.texts_to(7201)), what="close notice"
    )
    # Counted from here: under load, a first open that timed out may have been asked again.
    opened = len(sessions_opened(world))
    world.telegram.inject_text(user, "me again")
    await world.eventually(lambda: len(sessions_opened(world)) > opened, what="second session")
    second = sessions_opened(world)[-1]
    assert second["customer_token"] == token and second["group_id"] == 100
    session = await world.eventually(lambda: world.udesk.session_of(token), what="session")
    assert session.group_id == 100


async def test_field_push_finds_the_customer_by_token_and_answers_a_popup(world: World) -> None:
    user = {"id": 7301, "first_name": "Bo", "username": "bo", "language_code": "ru"}
    token = "tg-7301"
    world.telegram.inject_contact(user, "+86 138 0013 8001")
    await world.eventually(lambda: world.udesk.session_of(token), what="session")

    # Ticket-style key, then the documented customer object with the token inside it.
    status, answer = await post(
        world, "field-push", {"customer.open_api_token": token, "customer": {"level": "vip"}}
    )
    assert (status, answer) == (200, {"code": 1000, "error": ""})
    status, answer = await post(
        world, "field-push", {"customer": {"open_api_token": token, "tags": "a,b"}}
    )
    assert (status, answer) == (200, {"code": 1000, "error": ""})
    row = await customer_row(world, 7301)
    assert row is not None and (row.level, row.tags) == ("vip", "a,b")

    # The popup of a new IM session: what the bridge knows fills the blanks.
    session = world.udesk.session_of(token)
    assert session is not None
    await world.eventually(lambda: bridge_knows_session(world, session.id), what="stored")
    status, answer = await post(
        world, "field-push", {"customer": {"nick_name": ""}, "im_sub_session_id": session.id}
    )
    assert status == 200
    assert answer == {
        "code": 1000,
        "error": "",
        "customer": {
            "nick_name": "Bo (@bo)",
            "lang": "ru",
            "cellphones_attributes": ["+8613800138001"],
        },
    }
    row = await customer_row(world, 7301)
    assert row is not None and row.level == "vip"  # a push without level keeps it

    # Odd values are cleaned, not refused (NUL would break PostgreSQL text columns).
    odd = {"level": "v\u0000ip", "email": "\u0000", "TextField_9": "a\u0000b"}
    assert await post(world, "field-push", {"customer": odd, "customer_token": token}) == (
        200,
        {"code": 1000, "error": ""},
    )
    row = await customer_row(world, 7301)
    assert row is not None and (row.level, row.email) == ("vip", None)

    # A call popup finds them by the phone number.
    status, answer = await post(
        world, "field-push", {"customer": {"level": "normal"}, "phoneNumber": "13800138001"}
    )
    assert (status, answer) == (200, {"code": 1000, "error": ""})
    row = await customer_row(world, 7301)
    assert row is not None and row.level == "normal"


async def test_field_push_unknown_customer_wrong_secret_and_bad_bodies(world: World) -> None:
    status, answer = await post(
        world, "field-push", {"customer": {"level": "vip"}, "web_token": "someone-else"}
    )
    assert (status, answer) == (200, {"code": 1000, "error": ""})
    status, answer = await post(world, "field-push", {"ticket": {"subject": "Field Push"}})
    assert (status, answer) == (200, {"code": 1000, "error": ""})
    for odd in (
        {"customer": {"level": "v\u0000ip"}, "customer_token": "tg-\u00b2"},
        {"customer": {"tags": ["a\u0000", 1, None]}, "im_sub_session_id": "9" * 40},
        {"customer": {"cellphone": [{"content": "9" * 400}, {}, None]}, "phoneNumber": "x"},
        {"open_api_token": "t" * 500, "customer": "not an object", "tags": {"a": 1}},
    ):
        assert await post(world, "field-push", odd) == (200, {"code": 1000, "error": ""}), odd
    status, _ = await post(world, "field-push", {"customer": {}}, secret="wrong")
    assert status == 404
    status, answer = await post(world, "field-push", b"customer=vip")
    assert status == 400 and answer["error"] == "bad_push"
    status, _ = await post(world, "field-push", b"[1, 2]")
    assert status == 400
    assert await rejected(world, "field-push") == [b"customer=vip", b"[1, 2]"]


async def test_udesk_simulator_field_push_reaches_the_bridge(world: World) -> None:
    user = {"id": 7401, "first_name": "Kim"}
    world.telegram.inject_text(user, "hi")
    await world.eventually(lambda: world.udesk.session_of("tg-7401"), what="session")
    url = f"{world.bridge_url}/udesk/field-push/{PUSH_SECRET}"
    attempt = await world.udesk.field_push(
        url, {"customer": {"level": "vip"}, "customer_token": "tg-7401"}
    )
    assert attempt.ok and json.loads(attempt.response_text) == {"code": 1000, "error": ""}
    row = await customer_row(world, 7401)
    assert row is not None and row.level == "vip"


# --- profile sync ---------------------------------------------------------------------------


async def test_customer_created_with_telegram_profile_and_updated_on_change(world: World) -> None:
    user = {"id": 7501, "first_name": "Ada", "last_name": "L", "username": "ada"}
    user["language_code"] = "pt-br"
    token = "tg-7501"
    world.telegram.inject_text(user, "hello")
    await world.eventually(lambda: world.udesk.messages_for(token), what="message")
    created = world.udesk.calls_to("/customers", "POST")
    assert len(created) == 1
    sent = created[0].body
    assert sent["customer"]["open_api_token"] == token
    assert sent["customer"]["nick_name"] == "Ada L (@ada)"
    assert "lang:pt-br" in sent["tags"].split(",")
    customer = world.udesk.customer_by_token(token)
    assert customer is not None and not customer.auto_created
    assert customer.fields["nick_name"] == "Ada L (@ada)"
    assert "lang:pt-br" in [t["name"] for t in customer.fields["tags"]]

    # Same message count, new name: one PUT, by token.
    world.telegram.inject_text(
        {"id": 7501, "first_name": "Ada", "last_name": "Lovelace", "username": "countess"},
        "renamed",
    )
    await world.eventually(
        lambda: world.udesk.calls_to("/customers/update_customer", "PUT"), what="profile update"
    )
    update = world.udesk.calls_to("/customers/update_customer", "PUT")
    assert len(update) == 1
    assert update[0].query == {"type": "token", "content": token}
    assert update[0].body["customer"]["nick_name"] == "Ada Lovelace (@countess)"
    assert world.udesk.customer_by_token(token).fields["nick_name"] == "Ada Lovelace (@countess)"
    await world.eventually(lambda: len(world.udesk.messages_for(token)) == 2, what="2nd message")
    assert len(world.udesk.calls_to("/customers", "POST")) == 1  # created once

    world.telegram.inject_text(
        {"id": 7501, "first_name": "Ada", "last_name": "Lovelace", "username": "countess"},
        "same name",
    )
    await world.eventually(lambda: len(world.udesk.messages_for(token)) == 3, what="3rd message")
    assert len(world.udesk.calls_to("/customers/update_customer", "PUT")) == 1


# --- deep links -----------------------------------------------------------------------------


def company_customer(world: World, token: str, name: str) -> SimCustomer:
    """A customer the company created in Udesk itself (web or SDK)."""
    customer = SimCustomer(
        id=world.udesk.next_id("customer"),
        open_api_token=token,
        fields=shapes.new_customer_fields(name),
    )
    world.udesk.customers[customer.id] = customer
    return customer


async def test_forged_or_unsigned_links_stay_routing_hints(make_world: WorldFactory) -> None:
    world = await make_world(deeplink_secret=LINK_SECRET)
    company_customer(world, "web-42", "Alice Web")
    forged = deeplinks.make("web-42", 3600, "not-the-secret")
    expired = deeplinks.make("web-42", -10, LINK_SECRET)
    good = deeplinks.make("web-42", 3600, LINK_SECRET)
    tampered = deeplinks.make("web-43", 3600, LINK_SECRET)[:-14] + good[-14:]
    for uid, payload in ((7601, forged), (7602, expired), (7603, tampered), (7604, "sales")):
        world.telegram.inject_command({"id": uid, "first_name": "Eve"}, "/start", payload)
        world.telegram.inject_text({"id": uid, "first_name": "Eve"}, f"hi from {uid}")
        await world.eventually(lambda u=uid: world.udesk.messages_for(f"tg-{u}"), what=str(uid))
        row = await customer_row(world, uid)
        assert row is not None
        assert (row.customer_token, row.start_param) == (f"tg-{uid}", payload)
        assert "linked_token" not in row.profile
    assert world.udesk.messages_for("web-42") == []


async def test_without_a_secret_a_signed_link_is_only_a_hint(world: World) -> None:
    payload = deeplinks.make("web-42", 3600, LINK_SECRET)
    world.telegram.inject_command({"id": 7605, "first_name": "Eve"}, "/start", payload)
    await world.eventually(lambda: world.texts_to(7605), what="greeting")
    row = await customer_row(world, 7605)
    assert row is not None and (row.customer_token, row.start_param) == ("tg-7605", payload)


async def test_a_signed_link_makes_the_existing_customer_the_one_used(
    make_world: WorldFactory,
) -> None:
    world = await make_world(deeplink_secret=LINK_SECRET)
    company_customer(world, "web-42", "Alice Web")
    user = {"id": 7701, "first_name": "Alice", "username": "alice_tg"}
    payload = deeplinks.make("web-42", 3600, LINK_SECRET)
    assert len(payload) <= 64

    world.telegram.inject_command(user, "/start", payload)
    world.telegram.inject_text(user, "hello from Telegram")
    msgs = await world.eventually(lambda: world.udesk.messages_for("web-42"), what="message")
    assert [m.data["content"] for m in msgs] == ["hello from Telegram"]
    assert sessions_opened(world)[0]["customer_token"] == "web-42"
    assert world.udesk.messages_for("tg-7701") == []
    assert len(world.udesk.customers) == 1  # no second customer in Udesk
    row = await customer_row(world, 7701)
    assert row is not None
    assert row.customer_token == "web-42" and row.profile["linked_token"] == "web-42"
    assert row.start_param is None

    await world.udesk.agent_reply("web-42", "Hi Alice, I see your web orders")
    await world.eventually(
        lambda: any("web orders" in t for t in world.texts_to(7701)), what="agent reply"
    )
    # A new Telegram name does not overwrite the company's customer name.
    world.telegram.inject_text({**user, "first_name": "Alicia"}, "renamed")
    await world.eventually(lambda: len(world.udesk.messages_for("web-42")) == 2, what="2nd")
    assert world.udesk.calls_to("/customers/update_customer", "PUT") == []
    assert world.udesk.customer_by_token("web-42").fields["nick_name"] == "Alice Web"

    # The same Udesk customer cannot be taken by a second Telegram user.
    other = {"id": 7702, "first_name": "Mallory"}
    world.telegram.inject_command(other, "/start", payload)
    world.telegram.inject_text(other, "me too")
    await world.eventually(lambda: world.udesk.messages_for("tg-7702"), what="other's message")
    row = await customer_row(world, 7702)
    assert row is not None and row.customer_token == "tg-7702" and row.start_param is None


async def test_a_link_during_a_conversation_applies_to_the_next_session(
    make_world: WorldFactory,
) -> None:
    world = await make_world(deeplink_secret=LINK_SECRET)
    company_customer(world, "web-77", "Bob Web")
    user = {"id": 7801, "first_name": "Bob"}
    world.telegram.inject_text(user, "first question")
    await world.eventually(lambda: world.udesk.session_of("tg-7801"), what="session")

    world.telegram.inject_command(user, "/start", deeplinks.make("web-77", 3600, LINK_SECRET))
    world.telegram.inject_text(user, "still in the same chat")
    await world.eventually(lambda: len(world.udesk.messages_for("tg-7801")) == 2, what="2nd")
    row = await customer_row(world, 7801)
    assert row is not None
    assert row.customer_token == "tg-7801" and row.profile["linked_token"] == "web-77"

    await world.udesk.close_session("tg-7801", survey=False)
    await world.eventually(
        lambda: any("ended" in t.lower() for t in world.texts_to(7801)), what="close notice"
    )
    world.telegram.inject_text(user, "new question")
    msgs = await world.eventually(lambda: world.udesk.messages_for("web-77"), what="linked")
    assert [m.data["content"] for m in msgs] == ["new question"]
    assert world.udesk.customer_by_token("web-77").fields["nick_name"] == "Bob Web"
    # A late push under the old token still finds the Telegram user.
    late = {
        "customer_token": "tg-7801",
        "assign_type": "agent",
        "messages": [{"type": "message", "message_id": "late-1", "data": {"content": "P.S."}}],
    }
    status, _ = await post(world, "push", late)
    assert status == 200
    await world.eventually(lambda: "P.S." in world.texts_to(7801), what="late push delivered")
