"""The Telegram Bot API simulator, driven by a real python-telegram-bot Bot over HTTP."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from urllib.parse import quote

import aiohttp
import pytest
import telegram
from aiohttp import web
from aiohttp.test_utils import TestServer
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputMediaPhoto
from telegram.constants import ParseMode
from telegram.error import BadRequest, Conflict, Forbidden, NetworkError, RetryAfter

from bridge.sandbox.telegram_sim import SimError, TelegramSimulator
from bridge.sandbox.telegram_sim.media import make_jpeg, make_png

TOKEN = "123456:TEST-token"
USER = 1001


@pytest.fixture(autouse=True)
def _timedelta_periods(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB 22 warns (an error under filterwarnings=error) whenever RetryAfter or a duration is
    # read as int; opting in to timedelta values is what silences it.
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


@pytest.fixture
def sim(telegram_sim: TelegramSimulator) -> TelegramSimulator:
    return telegram_sim  # tests/conftest.py, token TOKEN


@pytest.fixture
async def bot(sim: TelegramSimulator) -> AsyncIterator[telegram.Bot]:
    async with telegram.Bot(
        TOKEN, base_url=sim.bot_base_url, base_file_url=sim.file_base_url
    ) as client:
        yield client


async def serve(app: web.Application) -> tuple[TestServer, str]:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server, str(server.make_url("")).rstrip("/")


async def test_get_me_and_error_shapes(sim: TelegramSimulator, bot: telegram.Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (123456, "udesk_test_bot", True)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sim.api_root}/botWRONG:token/getMe") as resp:
            assert resp.status == 401
            assert await resp.json() == {
                "ok": False,
                "error_code": 401,
                "description": "Unauthorized",
            }
        async with http.get(f"{sim.api_root}/bot{TOKEN}/noSuchMethod") as resp:
            assert (resp.status, (await resp.json())["description"]) == (404, "Not Found")


async def test_get_updates_confirms_by_offset(sim: TelegramSimulator, bot: telegram.Bot) -> None:
    sim.add_user(USER, "Ann", username="ann", language_code="ru")
    first = sim.inject_command(USER, "start", "sales")
    sim.inject_text(USER, "hello")
    updates = await bot.get_updates()
    assert [u.update_id for u in updates] == [first.update_id, first.update_id + 1]
    start = updates[0].message
    assert start.text == "/start sales" and start.chat.id == USER and start.chat.type == "private"
    assert start.entities[0].type == "bot_command" and start.from_user.language_code == "ru"
    assert len(await bot.get_updates(offset=updates[0].update_id + 1)) == 1
    assert await bot.get_updates(offset=updates[-1].update_id + 1) == ()


async def test_long_poll_wakes_on_injection(sim: TelegramSimulator, bot: telegram.Bot) -> None:
    asyncio.get_running_loop().call_later(0.2, sim.inject_text, USER, "late")
    started = time.monotonic()
    updates = await bot.get_updates(timeout=10)
    assert [u.message.text for u in updates] == ["late"]
    assert time.monotonic() - started < 3


async def test_html_is_stored_as_text_and_entities(
    sim: TelegramSimulator, bot: telegram.Bot
) -> None:
    sim.add_user(USER)
    html = '<b>Hi</b> 😀 <a href="https://example.com">site</a> &lt;ok&gt;'
    message = await bot.send_message(USER, html, parse_mode=ParseMode.HTML)
    assert message.text == "Hi 😀 site <ok>"
    stored = sim.sent(USER)[0]
    assert (stored.method, stored.raw_text, stored.parse_mode) == ("sendMessage", html, "HTML")
    assert stored.entities == [
        {"type": "bold", "offset": 0, "length": 2},
        {"type": "text_link", "offset": 6, "length": 4, "url": "https://example.com/"},
    ]
    assert message.from_user.username == "udesk_test_bot" and message.message_id == 1


async def test_invalid_markup_and_lengths_are_rejected(
    sim: TelegramSimulator, bot: telegram.Bot
) -> None:
    sim.add_user(USER)
    with pytest.raises(BadRequest, match=r'(?i)can\'t parse entities: Unsupported start tag "br"'):
        await bot.send_message(USER, "a<br>b", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"(?i)Unmatched end tag at byte offset 7"):
        await bot.send_message(USER, "<b><i>x</b></i>", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"(?i)Character '.' is reserved"):
        await bot.send_message(USER, "Done.", parse_mode=ParseMode.MARKDOWN_V2)
    with pytest.raises(BadRequest, match=r"(?i)Message is too long"):
        await bot.send_message(USER, "😀" * 2049)  # 4098 UTF-16 code units
    with pytest.raises(BadRequest, match=r"(?i)Message text is empty"):
        await bot.send_message(USER, "<b> </b>", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"(?i)Chat not found"):
        await bot.send_message(999, "nobody")
    assert sim.sent(USER) == []


async def test_send_photo_by_upload_and_by_url(sim: TelegramSimulator, bot: telegram.Bot) -> None:
    sim.add_user(USER)
    png = make_png(20, 10)
    message = await bot.send_photo(USER, png, caption="<i>chart</i>", parse_mode="HTML")
    assert (message.photo[-1].width, message.photo[-1].height) == (20, 10)
    assert sim.sent(USER)[0].data == png and sim.sent(USER)[0].caption_entities[0]["type"] == (
        "italic"
    )

    jpeg = make_jpeg(1000, 500)
    files = web.Application()
    files.router.add_get("/pic.jpg", lambda r: web.Response(body=jpeg, content_type="image/jpeg"))
    server, root = await serve(files)
    try:
        by_url = await bot.send_photo(USER, f"{root}/pic.jpg")
        assert [p.width for p in by_url.photo] == [90, 320, 800, 1000]
        assert sim.sent(USER)[1].data == jpeg
        with pytest.raises(BadRequest, match=r"(?i)Wrong file identifier/http url specified"):
            await bot.send_photo(USER, f"{root}/missing.jpg")
        with pytest.raises(BadRequest, match=r"(?i)Image_process_failed"):
            await bot.send_photo(USER, b"<html>not an image</html>")
    finally:
        await server.close()


async def test_user_photo_downloads_through_get_file(
    sim: TelegramSimulator, bot: telegram.Bot
) -> None:
    jpeg = make_jpeg(640, 480, label="customer photo")
    sim.inject_photo(USER, jpeg, caption="my receipt")
    (update,) = await bot.get_updates()
    assert update.message.caption == "my receipt"
    biggest = update.message.photo[-1]
    assert (biggest.width, biggest.file_size) == (640, len(jpeg))
    tg_file = await bot.get_file(biggest.file_id)
    buffer = io.BytesIO()
    await tg_file.download_to_memory(buffer)
    assert buffer.getvalue() == jpeg

    sim.set_file_size(biggest.file_id, 21 * 1024 * 1024)
    with pytest.raises(BadRequest, match=r"(?i)File is too big"):
        await bot.get_file(biggest.file_id)


async def test_blocked_user_answers_forbidden(sim: TelegramSimulator, bot: telegram.Bot) -> None:
    sim.inject_text(USER, "hi")
    sim.block(USER)
    with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
        await bot.send_message(USER, "are you there?")
    updates = await bot.get_updates()
    member = updates[-1].my_chat_member
    assert member.new_chat_member.status == "kicked" and member.chat.id == USER
    sim.unblock(USER)
    await bot.send_message(USER, "welcome back")


async def test_limits_answer_retry_after(sim: TelegramSimulator, bot: telegram.Bot) -> None:
    sim.add_user(USER)
    sim.add_user(USER + 1)
    sim.enforce_limits(True)
    await bot.send_message(USER, "one")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(USER, "two")
    assert caught.value.retry_after.total_seconds() == 1
    await bot.send_message(USER + 1, "other chat is fine")
    assert sim.stats["429"] == 1 and sim.max_sent_per_second() == 2


async def test_webhook_delivers_in_order_with_secret_and_retries(
    sim: TelegramSimulator, bot: telegram.Bot
) -> None:
    received: list[tuple[str | None, dict[str, object]]] = []
    statuses = [500]  # the receiver fails once, then accepts

    async def receive(request: web.Request) -> web.Response:
        status = statuses.pop(0) if statuses else 200
        if status == 200:
            received.append(
                (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
            )
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/telegram/webhook", receive)
    server, root = await serve(app)
    try:
        assert await bot.set_webhook(f"{root}/telegram/webhook", secret_token="s3cret")
        with pytest.raises(
            Conflict, match=r"(?i)can't use getUpdates method while webhook is active"
        ):
            await bot.get_updates()
        sim.inject_text(USER, "first")
        sim.inject_text(USER, "second")
        await sim.wait_for(lambda: len(received) == 2, timeout=5, what="webhook deliveries")
        assert [body["message"]["text"] for _, body in received] == ["first", "second"]  # type: ignore[index]
        assert {secret for secret, _ in received} == {"s3cret"}
        info = await bot.get_webhook_info()
        assert info.pending_update_count == 0
        assert (
            info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
        )
        assert await bot.delete_webhook()
        assert await bot.get_updates() == ()
    finally:
        await server.close()


async def test_callback_query_round_trip(sim: TelegramSimulator, bot: telegram.Bot) -> None:
    sim.add_user(USER)
    keyboard = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton("Yes", callback_data="rate:5")],
            [InlineKeyboardButton("No", callback_data="rate:1")],
        ]
    )
    sent = await bot.send_message(USER, "Rate us", reply_markup=keyboard)
    sim.inject_callback(USER, sent.message_id, button_text="Yes")
    (update,) = await bot.get_updates()
    query = update.callback_query
    assert (query.data, query.message.message_id, query.from_user.id) == (
        "rate:5",
        sent.message_id,
        USER,
    )
    assert await bot.answer_callback_query(query.id, text="Thanks!")
    assert sim.callback_answers[0]["text"] == "Thanks!"
    with pytest.raises(BadRequest, match=r"(?i)Query is too old"):
        await bot.answer_callback_query(query.id)
    await bot.edit_message_text("Rated", chat_id=USER, message_id=sent.message_id)
    edited = sim.sent(USER)[0]
    assert edited.text == "Rated" and edited.edits[0]["text"] == "Rate us"
    assert "reply_markup" not in edited.payload  # an edit without markup drops the keyboard


async def test_albums_in_both_directions(sim: TelegramSimulator, bot: telegram.Bot) -> None:
    injected = sim.inject_album(
        USER, [{"type": "photo", "caption": "front"}, {"type": "photo"}, {"type": "video"}]
    )
    updates = await bot.get_updates()
    assert [u.update_id for u in updates] == [i.update_id for i in injected]
    assert len({u.message.media_group_id for u in updates}) == 1
    assert updates[0].message.caption == "front" and updates[2].message.video is not None

    album = [InputMediaPhoto(make_png(4, 4), caption="a"), InputMediaPhoto(make_jpeg(8, 8))]
    messages = await bot.send_media_group(USER, album)
    assert len(messages) == 2 and messages[0].media_group_id == messages[1].media_group_id
    assert [m.media_kind for m in sim.sent(USER)] == ["photo", "photo"]


async def test_faults_break_requests_and_downloads(
    sim: TelegramSimulator, bot: telegram.Bot
) -> None:
    sim.inject_document(USER, b"%PDF-1.4 contract", file_name="contract.pdf")
    (update,) = await bot.get_updates()
    sim.inject_fault("sendMessage", "http_500")
    with pytest.raises(NetworkError, match=r"(?i)Internal Server Error"):
        await bot.send_message(USER, "x")
    sim.inject_fault("sendMessage", "drop_connection")
    with pytest.raises(NetworkError):
        await bot.send_message(USER, "x")
    sim.inject_fault(kind="truncate_download")
    tg_file = await bot.get_file(update.message.document.file_id)
    with pytest.raises(NetworkError):
        await tg_file.download_as_bytearray()
    assert bytes(await tg_file.download_as_bytearray()) == b"%PDF-1.4 contract"
    await bot.send_message(USER, "works again")


async def test_http_control_api(sim: TelegramSimulator, bot: telegram.Bot) -> None:
    async with aiohttp.ClientSession(base_url=sim.api_root) as http:
        body = {"user": {"id": USER, "first_name": "Bo"}, "phone_number": "+8613800000000"}
        async with http.post("/_sim/inject/contact", json=body) as resp:
            contact = (await resp.json())["result"]["message"]["contact"]
        assert contact == {"phone_number": "+8613800000000", "first_name": "Bo", "user_id": USER}
        await bot.send_message(USER, "*Got it*", parse_mode=ParseMode.MARKDOWN_V2)
        async with http.get(f"/_sim/chats/{USER}/messages") as resp:
            (message,) = (await resp.json())["result"]
        assert message["text"] == "Got it" and message["entities"][0]["type"] == "bold"
        async with http.post("/_sim/faults", json={"kind": "retry_after", "delay": 3}) as resp:
            assert resp.status == 200
        with pytest.raises(RetryAfter):
            await bot.send_chat_action(USER, "typing")
        async with http.post("/_sim/inject/nonsense", json={}) as resp:
            assert resp.status == 404


async def test_redirect_fault_acts_as_a_portal_in_front_of_the_bot_api(
    sim: TelegramSimulator,
) -> None:
    sim.inject_fault("sendMessage", "redirect", location="https://portal.example/login")
    url = f"{sim.bot_base_url}{TOKEN}/sendMessage"
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data={"chat_id": USER, "text": "x"}, allow_redirects=False) as resp,
    ):
        assert resp.status == 302
        location = resp.headers["Location"]
        page = await resp.text()
    # The way back is the URL asked for, token and all, percent-encoded, in both.
    back = quote(url, safe="")
    assert location == f"https://portal.example/login?return_to={back}"
    assert back in page and resp.content_type == "text/html"
    assert sim.sent(USER) == []
    with pytest.raises(SimError, match="location"):
        sim.inject_fault("sendMessage", "redirect")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("javascript://alert(1)", "Unsupported URL protocol"),
        ("ftp://files.example.com/a.pdf", "Unsupported URL protocol"),
        ("javascript:alert(1)", "Wrong port number specified in the URL"),
        ("/kb/article/12", "URL host is empty"),
        ("http://localhost:8080/", "Wrong HTTP URL"),
    ],
)
async def test_a_refused_button_link_refuses_the_whole_message(
    sim: TelegramSimulator, bot: telegram.Bot, url: str, reason: str
) -> None:
    sim.add_user(USER, "Ann")
    markup = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton("Ask", callback_data="b:1")],
            [InlineKeyboardButton("Open", url=url)],
        ]
    )
    with pytest.raises(BadRequest) as info:
        await bot.send_message(USER, "answer", reply_markup=markup)
    # python-telegram-bot capitalises the description; the server's is exactly this.
    expected = f"inline keyboard button URL '{url}' is invalid: {reason}"
    assert info.value.message.lower() == expected.lower()
    assert sim.sent(USER) == []
    taken = InlineKeyboardMarkup([[InlineKeyboardButton("Open", url="example.com/faq")]])
    await bot.send_message(USER, "answer", reply_markup=taken)  # no scheme means http
