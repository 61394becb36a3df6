"""Customer → agent: every kind of Telegram message reaches Udesk once, in order."""

from __future__ import annotations

import datetime as dt

import aiohttp
import pytest

from bridge.store.queue import enqueue
from bridge.store.tables import TelegramUpdate, utcnow
from tests.e2e.conftest import World

USER = {"id": 6001, "first_name": "Bo", "username": "bo", "language_code": "en"}
TOKEN = "tg-6001"


def contents(world: World, token: str = TOKEN) -> list[tuple[str, str]]:
    return [(m.type, m.data.get("content", "")) for m in world.udesk.messages_for(token)]


async def fetch(url: str) -> tuple[int, bytes, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.read(), response.headers.get("Content-Type", "")


async def test_text_keeps_formatting_and_order(world: World) -> None:
    for i in range(5):
        world.telegram.inject_text(USER, f"message {i}")
    world.telegram.inject_text(
        USER, "bold and link", entities=[{"type": "bold", "offset": 0, "length": 4}]
    )
    got = await world.eventually(lambda: len(contents(world)) == 6 and contents(world))
    assert [c for _, c in got[:5]] == [f"message {i}" for i in range(5)]
    assert got[5] == ("message", "<b>bold</b> and link")
    assert world.udesk.duplicate_messages == []


@pytest.mark.parametrize(
    ("inject", "udesk_type"),
    [
        ("photo", "image"),
        ("document", "file"),
        ("voice", "audio"),
        ("audio", "audio"),
        ("video", "video"),
        ("video_note", "video"),
        ("sticker", "image"),
    ],
)
async def test_every_media_type_arrives_as_an_expiring_link(
    world: World, inject: str, udesk_type: str
) -> None:
    payload = b"\x89PNG fake media bytes " + inject.encode()
    kwargs = (
        {"file_name": "report.pdf", "mime_type": "application/pdf"} if inject == "document" else {}
    )
    if inject == "photo":
        payload = None  # the simulator makes a real JPEG
    getattr(world.telegram, f"inject_{inject}")(USER, payload, **kwargs)
    (kind, url), *_ = await world.eventually(lambda: contents(world), what=f"{inject} in Udesk")
    assert kind == udesk_type
    assert url.startswith(f"{world.bridge_url}/media/")
    assert world.settings.telegram_bot_token.get_secret_value() not in url
    status, body, content_type = await fetch(url)
    assert status == 200 and len(body) > 0
    if payload is not None:
        assert body == payload
    if inject == "document":
        assert content_type == "application/pdf"
        assert world.udesk.messages_for(TOKEN)[0].data.get("filename") == "report.pdf"
    # A guessed token is just not found.
    status, _, _ = await fetch(url[:-4] + "AAAA")
    assert status == 404


async def test_photo_caption_follows_the_photo(world: World) -> None:
    world.telegram.inject_photo(USER, caption="my broken screen")
    got = await world.eventually(lambda: len(contents(world)) == 2 and contents(world))
    assert got[0][0] == "image" and got[1] == ("message", "my broken screen")


async def test_album_arrives_in_order(world: World) -> None:
    world.telegram.inject_album(
        USER,
        [{"type": "photo", "caption": "three pictures"}, {"type": "photo"}, {"type": "photo"}],
    )
    got = await world.eventually(lambda: len(contents(world)) == 4 and contents(world))
    assert [k for k, _ in got] == ["image", "message", "image", "image"]
    assert got[1][1] == "three pictures"


async def test_edit_reaches_the_agent_marked_as_edit(world: World) -> None:
    sent = world.telegram.inject_text(USER, "I ordered 2 boxes")
    await world.eventually(lambda: contents(world))
    world.telegram.inject_edit(USER, sent.message_id, text="I ordered 3 boxes")
    got = await world.eventually(lambda: len(contents(world)) == 2 and contents(world))
    assert got[1][1] == "[edited] I ordered 3 boxes"


async def test_location_and_own_contact_become_text(world: World) -> None:
    world.telegram.inject_location(USER, 31.2304, 121.4737)
    world.telegram.inject_contact(USER, "+86 138 0013 8000", first_name="Bo")
    got = await world.eventually(lambda: len(contents(world)) == 2 and contents(world))
    assert "31.2304" in got[0][1] and "maps" in got[0][1]
    assert "+86 138 0013 8000" in got[1][1]


async def test_file_over_20mb_gets_a_polite_reply_and_a_note(world: World) -> None:
    world.telegram.inject_document(USER, b"y", file_name="huge.iso", file_size=25 * 1024 * 1024)
    got = await world.eventually(lambda: contents(world))
    assert "over 20 MB" in got[0][1] and "huge.iso" in got[0][1]
    await world.eventually(
        lambda: any("too large" in t for t in world.texts_to(6001)), what="polite reply"
    )


async def test_queue_position_is_kept_current_and_cancel_leaves(world: World) -> None:
    world.udesk.set_agent(1, "Tom", online=True, capacity=0)
    world.telegram.inject_text(USER, "anyone there?")
    await world.eventually(
        lambda: any("number 1 in line" in t for t in world.texts_to(6001)), what="queue notice"
    )
    # Sent while queued: im_sub_session_id -3.
    msgs = await world.eventually(lambda: world.udesk.messages_for(TOKEN))
    assert msgs[0].im_sub_session_id == -3
    world.telegram.inject_command(USER, "/cancel")
    await world.eventually(
        lambda: any("left the queue" in t for t in world.texts_to(6001)), what="left queue"
    )
    assert world.udesk.calls_to("/im/sessions/close_queue")


async def test_no_agent_online_leaves_a_message_as_one_ticket(world: World) -> None:
    world.udesk.set_agent(1, "Tom", online=False)
    world.telegram.inject_text(USER, "My order 123 never arrived\nPlease check")
    await world.eventually(
        lambda: any("No agent is available" in t for t in world.texts_to(6001)), what="prompt"
    )
    prompt = next(m for m in world.telegram.sent(6001) if m.text and "No agent" in m.text)
    keyboard = prompt.reply_markup["keyboard"]
    assert keyboard[0][0]["request_contact"] is True  # the phone button, offered once
    ticket = await world.eventually(lambda: next(iter(world.udesk.tickets.values()), None))
    assert ticket.subject == "My order 123 never arrived"
    world.telegram.inject_text(USER, "It was a blue box")
    world.telegram.inject_photo(USER)
    await world.eventually(lambda: len(ticket.replies) >= 2 and ticket.attachment_ids)
    assert len(world.udesk.tickets) == 1
    assert "It was a blue box" in ticket.replies[0].content
    # The agent answers on the ticket; an internal note stays internal.
    await world.udesk.ticket_reply(ticket.id, "Internal: check the warehouse", internal=True)
    await world.udesk.ticket_reply(ticket.id, "We found it and resent it today.")
    await world.bridge.parts.watchers.tickets.poll()
    await world.eventually(lambda: "We found it and resent it today." in world.texts_to(6001))
    world.udesk.set_ticket_status(ticket.id, "resolved")
    await world.bridge.parts.watchers.tickets.poll()
    await world.bridge.parts.watchers.tickets.poll()
    texts = world.texts_to(6001)
    assert texts.count("We found it and resent it today.") == 1
    assert not any("warehouse" in t for t in texts)
    assert sum("No agent is available" in t for t in texts) == 1


async def test_session_gone_opens_a_new_one_without_the_user_noticing(world: World) -> None:
    world.telegram.inject_text(USER, "first")
    await world.eventually(lambda: contents(world))
    world.udesk.push_enabled = False  # Udesk closes the session; the bridge is not told
    await world.udesk.close_session(TOKEN, survey=False)
    world.udesk.push_enabled = True
    world.telegram.inject_text(USER, "second")
    got = await world.eventually(lambda: len(contents(world)) == 2 and contents(world))
    assert [c for _, c in got] == ["first", "second"]
    sessions = {m.session_id for m in world.udesk.messages_for(TOKEN)}
    assert len(sessions) == 2
    assert not any("could not be delivered" in t for t in world.texts_to(6001))


async def test_udesk_failing_for_a_while_then_recovering_keeps_order(world: World) -> None:
    world.telegram.inject_text(USER, "before")
    await world.eventually(lambda: contents(world))
    world.udesk.inject_fault("/im/messages", "http_500", duration=4)
    for i in range(5):
        world.telegram.inject_text(USER, f"during {i}")
    got = await world.eventually(
        lambda: len(contents(world)) == 6 and contents(world), timeout=30, what="recovery"
    )
    assert [c for _, c in got] == ["before"] + [f"during {i}" for i in range(5)]
    assert world.udesk.duplicate_messages == []


async def test_previews_never_exceed_three_per_second(world: World) -> None:
    world.telegram.inject_text(USER, "hi")
    await world.eventually(lambda: contents(world))
    # Slow Udesk: every message is retried, each retry asks for a preview.
    world.udesk.inject_fault("/im/messages", "http_500", duration=3)
    for i in range(30):
        world.telegram.inject_text(USER, f"burst {i}")
    await world.eventually(lambda: len(contents(world)) == 31, timeout=40, what="burst")
    assert world.udesk.previews, "the agent saw no preview while messages were retried"
    assert world.udesk.preview_rate_violations == []


async def test_an_update_waits_behind_an_earlier_queued_update_of_its_chat(world: World) -> None:
    """Updates are normally recorded as they are stored; one whose chat still has an earlier
    update waiting in the queue (its processing failed once and backs off) goes behind it."""
    chat = USER["id"]
    earlier = {
        "update_id": 990_001,
        "message": {
            "message_id": 9_001,
            "date": int(utcnow().timestamp()),
            "chat": {"id": chat, "type": "private", "first_name": USER["first_name"]},
            "from": {"id": chat, "is_bot": False, "first_name": USER["first_name"]},
            "text": "the earlier message",
        },
    }
    async with world.bridge.parts.sessions.begin() as session:
        await enqueue(
            session,
            TelegramUpdate,
            dedup_key="u:990001",
            lock=f"chat:{chat}",
            kind="update",
            payload=earlier,
            scheduled_at=utcnow() + dt.timedelta(seconds=1.5),
        )
    world.telegram.inject_text(USER, "the later message")
    got = await world.eventually(lambda: len(contents(world)) == 2 and contents(world))
    assert [c for _, c in got] == ["the earlier message", "the later message"]
