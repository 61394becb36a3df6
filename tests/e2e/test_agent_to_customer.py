"""Agent → customer: Udesk pushes become Telegram messages, once, in order, rendered well."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, select

from bridge.store.db import create_engine
from bridge.store.tables import RejectedPush
from tests.e2e.conftest import PUSH_SECRET, World, free_port
from tests.udesk.test_push_models import DOC_AGENT_PUSH, DOC_ROBOT_PUSH, DOC_UROBOT_MESSAGES

USER = {"id": 8001, "first_name": "Li", "language_code": "en"}
CHAT = 8001
TOKEN = "tg-8001"
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99"
    b"=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture
async def files() -> AsyncIterator[str]:
    """A tiny web server for agents' attachments (Udesk hosts them on its CDN)."""

    async def serve(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name.endswith(".png"):
            return web.Response(body=PNG, content_type="image/png")
        return web.Response(body=b"%PDF-1.4 fake", content_type="application/pdf")

    app = web.Application()
    app.router.add_get("/{name}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def connected(world: World) -> None:
    """The customer has written and an agent session is open."""
    world.telegram.inject_text(USER, "hello")
    await world.eventually(lambda: world.udesk.messages_for(TOKEN), what="first message")
    await world.udesk.drain()  # start_session and the welcome message are pushed
    await world.eventually(lambda: len(world.texts_to(CHAT)) >= 2, what="joined and welcome")


async def post_push(world: World, body: bytes, secret: str = PUSH_SECRET) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{world.bridge_url}/udesk/push/{secret}", data=body) as response,
    ):
        return response.status, await response.text()


async def rejected_count(world: World) -> int:
    engine = create_engine(world.settings.database_url.get_secret_value())
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(RejectedPush)) or 0)
    finally:
        await engine.dispose()


async def test_every_doc_example_is_acknowledged_with_an_empty_200(world: World) -> None:
    for example in (DOC_AGENT_PUSH, DOC_ROBOT_PUSH, DOC_UROBOT_MESSAGES):
        status, body = await post_push(world, example.encode())
        assert (status, body) == (200, "")


async def test_bad_pushes_get_precise_answers_and_are_kept(world: World) -> None:
    good = json.dumps({"customer_token": TOKEN, "assign_type": "agent", "messages": []})
    assert (await post_push(world, good.encode(), secret="wrong"))[0] == 404
    assert (await post_push(world, b"{not json"))[0] == 400
    assert (await post_push(world, b'{"hello": "world"}'))[0] == 400
    assert (await post_push(world, b"x" * (1024 * 1024 + 10)))[0] == 413
    assert await rejected_count(world) == 2
    # An unknown customer is acknowledged (Udesk must not retry) and recorded, not shown.
    unknown = {
        "customer_token": "nobody",
        "assign_type": "agent",
        "messages": [{"type": "message", "message_id": "m-unknown", "data": {"content": "hi"}}],
    }
    assert await post_push(world, json.dumps(unknown).encode()) == (200, "")


async def test_agent_messages_are_delivered_once_even_when_pushed_twice(world: World) -> None:
    await connected(world)
    push = {
        "customer_token": TOKEN,
        "assign_type": "agent",
        "messages": [
            {
                "type": "message",
                "message_id": "dup-1",
                "agent_name": "Tom",
                "data": {"content": "A"},
            }
        ],
    }
    for _ in range(3):
        assert await post_push(world, json.dumps(push).encode()) == (200, "")
    await world.eventually(lambda: "A" in world.texts_to(CHAT))
    await world.udesk.agent_reply(TOKEN, "B")
    await world.eventually(lambda: "B" in world.texts_to(CHAT))
    assert world.texts_to(CHAT).count("A") == 1


async def test_out_of_order_pushes_are_all_delivered(world: World) -> None:
    await connected(world)
    sub = world.udesk.session_of(TOKEN).id

    def push(mid: str, text: str, created: str) -> bytes:
        message = {
            "type": "message",
            "message_id": mid,
            "im_sub_session_id": sub,
            "message_created_at": created,
            "data": {"content": text},
        }
        return json.dumps(
            {"customer_token": TOKEN, "assign_type": "agent", "messages": [message]}
        ).encode()

    assert (await post_push(world, push("late", "second", "20261125 10:00:02")))[0] == 200
    assert (await post_push(world, push("early", "first", "20261125 10:00:01")))[0] == 200
    await world.eventually(lambda: {"first", "second"} <= set(world.texts_to(CHAT)))
    texts = world.texts_to(CHAT)
    assert texts.count("first") == 1 and texts.count("second") == 1


async def test_rich_html_is_rendered_and_hostile_markup_removed(world: World) -> None:
    await connected(world)
    html = (
        '<p>Our <b>sale</b> <a href="https://example.com/sale">here</a></p>'
        "<script>alert('x')</script><p onclick=\"evil()\">safe <i>text</i></p>"
        '<a href="javascript:alert(1)">bad link</a><iframe src="https://evil"></iframe>'
    )
    await world.udesk.agent_reply(TOKEN, html, type="rich")
    message = await world.eventually(
        lambda: next((m for m in world.telegram.sent(CHAT) if m.text and "sale" in m.text), None)
    )
    assert "alert" not in message.text and "evil" not in message.text
    assert "safe text" in message.text and "bad link" in message.text
    kinds = {(e["type"], e.get("url")) for e in message.entities}
    assert ("bold", None) in kinds and ("italic", None) in kinds
    assert ("text_link", "https://example.com/sale") in kinds
    assert not any("javascript" in str(e.get("url")) for e in message.entities)


async def test_long_text_is_split_within_telegram_limits(world: World) -> None:
    await connected(world)
    paragraph = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 10
    text = "\n\n".join([paragraph.strip()] * 9)
    assert len(text) > 5000
    await world.udesk.agent_reply(TOKEN, text)
    parts = await world.eventually(
        lambda: (
            [t for t in world.texts_to(CHAT) if t.startswith("Lorem")]
            if sum(len(t) for t in world.texts_to(CHAT) if t.startswith("Lorem")) >= len(text) - 20
            else None
        )
    )
    assert len(parts) == 2 and all(len(p) <= 4096 for p in parts)
    assert "".join(parts).replace("\n", "") == text.replace("\n", "").replace(" ", "", 0)


async def test_attachments_are_sent_as_media(world: World, files: str) -> None:
    await connected(world)
    await world.udesk.agent_reply(TOKEN, f"{files}/photo.png", type="image")
    await world.udesk.agent_reply(
        TOKEN, f"{files}/invoice.pdf", type="file", filename="invoice.pdf"
    )
    await world.eventually(
        lambda: {"photo", "document"} <= {m.media_kind for m in world.telegram.sent(CHAT)},
        what="photo and document",
    )
    document = next(m for m in world.telegram.sent(CHAT) if m.media_kind == "document")
    assert document.files[-1].file_name == "invoice.pdf"


async def test_attachment_on_a_private_address_is_refused_without_the_allowance(
    world: World,
) -> None:
    world.bridge.parts.sender.allow_private_urls = False  # as in production
    await connected(world)
    await world.udesk.agent_reply(TOKEN, "http://127.0.0.1:9/secret.pdf", type="file")
    await world.udesk.agent_reply(TOKEN, "after the attachment")
    await world.eventually(lambda: "after the attachment" in world.texts_to(CHAT))
    assert not any(m.media_kind == "document" for m in world.telegram.sent(CHAT))


def keyboard_of(world: World, contains: str) -> tuple[int, list[dict[str, str]]] | None:
    for message in reversed(world.telegram.sent(CHAT)):
        if message.reply_markup and "inline_keyboard" in message.reply_markup:
            buttons = [b for row in message.reply_markup["inline_keyboard"] for b in row]
            if any(contains in b["text"] for b in buttons):
                return message.message_id, buttons
    return None


async def test_transfer_and_close_with_survey_answered_once(world: World) -> None:
    await connected(world)
    world.udesk.set_agent(2, "Jerry", capacity=5)
    await world.udesk.transfer(TOKEN, 2)
    await world.eventually(lambda: any("talking to Jerry" in t for t in world.texts_to(CHAT)))
    await world.udesk.close_session(TOKEN, survey=True)
    message_id, buttons = await world.eventually(lambda: keyboard_of(world, "5 stars"))
    assert any("ended" in t for t in world.texts_to(CHAT))
    five = next(b for b in buttons if "5 stars" in b["text"])
    world.telegram.inject_callback(USER, message_id, five["callback_data"])
    # resolved_enabled: "Has your problem been resolved?" comes before anything is sent.
    message_id, buttons = await world.eventually(lambda: keyboard_of(world, "Resolved"))
    world.telegram.inject_callback(USER, message_id, buttons[0]["callback_data"])
    await world.eventually(lambda: world.udesk.surveys, what="survey in Udesk")
    message_id, _ = await world.eventually(lambda: keyboard_of(world, "5 stars"))
    world.telegram.inject_callback(USER, message_id, five["callback_data"])  # a second tap
    await world.eventually(lambda: len(world.telegram.callback_answers) == 3)
    assert len(world.udesk.surveys) == 1
    survey = world.udesk.surveys[0].params
    assert (survey.get("option_id"), survey.get("resolved_state_v2")) == (61, 0)
    answers = [a.get("text") for a in world.telegram.callback_answers]
    assert "Thank you for rating us!" in answers
    assert "You have already rated this conversation." in answers


async def test_low_rating_asks_for_a_remark_which_is_not_sent_to_the_agent(
    world: World,
) -> None:
    await connected(world)
    await world.udesk.close_session(TOKEN, survey=True)
    message_id, buttons = await world.eventually(lambda: keyboard_of(world, "1 star"))
    one = next(b for b in buttons if "1 star" in b["text"])
    world.telegram.inject_callback(USER, message_id, one["callback_data"])
    message_id, buttons = await world.eventually(lambda: keyboard_of(world, "Unresolved"))
    world.telegram.inject_callback(USER, message_id, buttons[1]["callback_data"])
    prompt = await world.eventually(
        lambda: next(
            (m for m in world.telegram.sent(CHAT) if (m.reply_markup or {}).get("force_reply")),
            None,
        ),
        what="remark prompt",
    )
    assert "remark" in (prompt.text or "")
    sent_before = len(world.udesk.messages_for(TOKEN))
    world.telegram.inject_text(USER, "The answer took far too long")
    await world.eventually(lambda: world.udesk.surveys, what="survey with remark")
    survey = world.udesk.surveys[0].params
    assert survey.get("remark") == "The answer took far too long"
    assert survey.get("resolved_state_v2") == 1
    assert len(world.udesk.messages_for(TOKEN)) == sent_before


async def test_hidden_event_types_are_not_shown(world: World) -> None:
    await connected(world)
    before = len(world.texts_to(CHAT))
    for kind in ("survey", "info_transfer", "robot_transfer", "struct"):
        await world.udesk.agent_reply(TOKEN, f"internal {kind}", type=kind)
    await world.udesk.agent_reply(TOKEN, "visible")
    await world.eventually(lambda: "visible" in world.texts_to(CHAT))
    assert len(world.texts_to(CHAT)) == before + 1


async def test_robot_answer_buttons_ask_the_question(world: World) -> None:
    await connected(world)
    await world.udesk.robot_reply(
        TOKEN,
        "We sell cloud support.",
        question="What do you do?",
        question_id=210530,
        gus_list=["Where are you?"],
        third_url="https://www.udesk.cn",
    )
    answer = await world.eventually(
        lambda: next(
            (m for m in world.telegram.sent(CHAT) if m.text == "We sell cloud support."), None
        )
    )
    rows = answer.reply_markup["inline_keyboard"]
    labels = [b["text"] for row in rows for b in row]
    assert "Where are you?" in labels and "Talk to a person" in labels
    assert any(b.get("url") == "https://www.udesk.cn" for row in rows for b in row)
    ask = next(b for row in rows for b in row if b["text"] == "Where are you?")
    world.telegram.inject_callback(USER, answer.message_id, ask["callback_data"])
    await world.eventually(
        lambda: any(
            m.data.get("content") == "Where are you?" for m in world.udesk.messages_for(TOKEN)
        )
    )


@pytest.mark.parametrize("link", ["javascript:alert(1)", "/kb/article/12"])
async def test_robot_answer_with_a_link_telegram_refuses_still_arrives(
    world: World, link: str
) -> None:
    # Telegram refuses a whole message whose keyboard holds such a link: the answer and its
    # other buttons arrive, the link button is left out.
    await connected(world)
    await world.udesk.robot_reply(
        TOKEN, "Our returns policy.", question="Returns?", question_id=7, third_url=link
    )
    answer = await world.eventually(
        lambda: next(
            (m for m in world.telegram.sent(CHAT) if m.text == "Our returns policy."), None
        ),
        what="the robot answer",
    )
    buttons = [b for row in answer.reply_markup["inline_keyboard"] for b in row]
    labels = [b["text"] for b in buttons]
    assert {"👍 Helpful", "👎 Not helpful", "Talk to a person"} <= set(labels)
    assert "Open link" not in labels and not any("url" in b for b in buttons)


async def test_telegram_flood_control_is_honoured(world: World) -> None:
    await connected(world)
    world.telegram.inject_fault(method="sendMessage", kind="retry_after", count=1, retry_after=1)
    await world.udesk.agent_reply(TOKEN, "after a flood wait")
    await world.eventually(lambda: "after a flood wait" in world.texts_to(CHAT), timeout=15)
    assert world.texts_to(CHAT).count("after a flood wait") == 1


async def test_blocked_user_is_marked_unreachable_and_back_when_writing(world: World) -> None:
    await connected(world)
    world.telegram.block(USER)
    await world.udesk.agent_reply(TOKEN, "are you there?")
    await world.eventually(
        lambda: world.udesk.customer_by_token(TOKEN).online_state == 0, what="offline in Udesk"
    )
    assert "are you there?" not in world.texts_to(CHAT)
    world.telegram.inject_text(USER, "I am back")
    await world.eventually(
        lambda: world.udesk.customer_by_token(TOKEN).online_state == 1, what="online in Udesk"
    )


async def test_replies_missed_while_the_bridge_was_down_are_caught_up_once(
    world: World,
) -> None:
    await connected(world)
    world.udesk.push_enabled = False  # the push URL is unreachable
    await world.udesk.agent_reply(TOKEN, "missed one")
    await world.udesk.agent_reply(TOKEN, "missed two")
    world.udesk.push_enabled = True
    await world.bridge.parts.watchers.catch_up()
    await world.eventually(lambda: "missed two" in world.texts_to(CHAT))
    await world.bridge.parts.watchers.catch_up()  # a second catch-up delivers nothing again
    texts = world.texts_to(CHAT)
    assert texts.count("missed one") == 1 and texts.count("missed two") == 1
    assert texts.index("missed one") < texts.index("missed two")
