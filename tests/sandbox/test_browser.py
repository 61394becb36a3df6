"""Both sandbox pages in a real headless Chromium, against the real bridge between the two
simulators: what a person trying the sandbox would click."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.sandbox.run import Sandbox
from bridge.sandbox.telegram_sim.media import make_jpeg
from tests.sandbox.conftest import eventually

try:
    from playwright.async_api import Page, expect
except ImportError:  # the ``browser`` fixture skips these tests and says why
    Page = Any  # type: ignore[misc,assignment]

pytestmark = [pytest.mark.browser, pytest.mark.timeout(150)]


async def open_page(browser: Any, url: str, errors: list[str]) -> Page:
    page = await browser.new_page()
    page.on("pageerror", lambda exc: errors.append(f"{url}: {exc}"))
    await page.goto(url)
    return page


def jpeg(tmp_path: Path, name: str, width: int, height: int) -> Path:
    path = tmp_path / name
    path.write_bytes(make_jpeg(width, height, label=name))
    return path


async def bot_api(sandbox: Sandbox, method: str, **params: Any) -> Any:
    """Call the Bot API as the bot would, for what the bridge does not do on cue."""
    url = f"{sandbox.telegram_url}/bot{sandbox.secrets.bot_token}/{method}"
    async with aiohttp.ClientSession() as http, http.post(url, json=params) as response:
        answer = await response.json()
    assert answer["ok"], answer
    return answer["result"]


async def test_conversation_photo_and_survey(
    sandbox: Sandbox, browser: Any, tmp_path: Path
) -> None:
    errors: list[str] = []
    chat = await open_page(
        browser, f"{sandbox.telegram_url}/sandbox/chat?user=2001&name=Ada", errors
    )

    # The customer starts the bot, asks, and sends a photo.
    await chat.click("button[data-command='/start']")
    await expect(chat.locator(".msg.in").first).to_contain_text("Hello!")
    await chat.fill("#text", "Hello, I need help with my order")
    await chat.press("#text", "Enter")
    await expect(chat.locator(".msg.in", has_text="Tom joined")).to_be_visible()
    await chat.set_input_files("#file", str(jpeg(tmp_path, "receipt.jpg", 320, 240)))
    await expect(chat.locator(".msg.out img.photo")).to_have_count(1)

    # The agent sees the text, and the photo through the bridge's media link.
    console = await open_page(browser, sandbox.console_url, errors)
    await console.locator("#conversations li", has_text="Ada").click()
    timeline = console.locator("#timeline")
    await expect(timeline.locator(".item.customer").first).to_contain_text("help with my order")
    image = timeline.locator(".item.customer img.image")
    await expect(image).to_have_count(1)
    src = str(await image.get_attribute("src"))
    assert src.startswith(f"{sandbox.bridge_url}/media/"), src

    async def loaded_width() -> int:
        return int(await image.evaluate("img => img.complete ? img.naturalWidth : 0"))

    assert await eventually(loaded_width, what="the photo to load in the console") == 320
    rule = (await sandbox.view.sessions())[-1]["rule_name"]
    await expect(console.locator("#facts")).to_contain_text(f"rule: {rule}")

    # The agent answers with formatting; the chat shows it formatted.
    await console.select_option("#reply-type", "rich")
    await console.fill(
        "#reply", 'Your <b>order</b> is here: <a href="https://udesk.cn/t/1">track</a>'
    )
    await console.click("#send")
    answer = chat.locator(".msg.in", has_text="is here")
    await expect(answer.locator(".text b")).to_have_text("order")
    await expect(answer.locator('.text a[href="https://udesk.cn/t/1"]')).to_have_text("track")

    # ...and with an uploaded image.
    await console.select_option("#reply-type", "upload")
    await console.set_input_files("#upload", str(jpeg(tmp_path, "map.jpg", 200, 100)))
    await console.click("#send")
    await expect(chat.locator(".msg.in img.photo")).to_have_count(1)

    # The agent closes with a survey; the customer rates; Udesk records the rating.
    await console.check("#with-survey")
    await console.click("#close")
    await chat.locator(".inline-keyboard button", has_text="5 stars").click()
    # Udesk's survey asks "Has your problem been resolved?" before the rating is sent.
    await chat.locator(".inline-keyboard button", has_text="Resolved").first.click()
    surveys = await eventually(
        lambda: [s for s in sandbox.udesk.surveys if s.kind == "session"], what="the survey"
    )
    assert int(surveys[0].params["option_id"]) == 61
    await expect(console.locator("#facts")).to_contain_text("rated 5 stars")
    await expect(console.locator("#timeline .event", has_text="rated the session")).to_be_visible()
    assert errors == []


async def test_queue_transfer_robots_albums_edits_contact(
    sandbox: Sandbox, browser: Any, tmp_path: Path
) -> None:
    errors: list[str] = []
    udesk, telegram = sandbox.udesk, sandbox.telegram
    console = await open_page(browser, sandbox.console_url, errors)

    # Jerry goes offline from the console; Tom takes one customer at a time.
    jerry = console.locator("#agents li", has_text="Jerry")
    await jerry.locator(".slider").click()
    await eventually(lambda: udesk.agents[2].status == "offline", what="Jerry offline")
    udesk.set_agent(1, "Tom", capacity=1)
    telegram.inject_text({"id": 3001, "first_name": "Bob"}, "hi")
    await eventually(lambda: udesk.session_of("tg-3001"), what="Bob with Tom")
    telegram.inject_text({"id": 3002, "first_name": "Dan"}, "hello")
    await eventually(lambda: udesk.queue, what="Dan queued")

    # Our customer queues second; when Dan leaves, the same notice is edited to say 1.
    chat = await open_page(
        browser, f"{sandbox.telegram_url}/sandbox/chat?user=2002&name=Cleo", errors
    )
    await chat.fill("#text", "I am waiting")
    await chat.press("#text", "Enter")
    notice = chat.locator(".msg.in", has_text="in line")
    await expect(notice).to_contain_text("number 2")
    await expect(console.locator("#queue li", has_text="Cleo")).to_contain_text("#2")
    telegram.inject_command(3002, "/cancel")
    await expect(notice).to_contain_text("number 1")
    await expect(notice).to_have_count(1)
    await expect(notice.locator(".meta")).to_contain_text("edited")

    # Jerry comes back; the agent advances the queue, then transfers Cleo to Tom.
    await jerry.locator(".slider").click()
    await eventually(lambda: udesk.agents[2].status == "online", what="Jerry online")
    await console.click("#advance")
    await expect(chat.locator(".msg.in", has_text="Jerry joined")).to_be_visible()
    await console.locator("#conversations li", has_text="Cleo").click()
    await expect(console.locator("#facts")).to_contain_text("with Jerry")
    await console.select_option("#transfer-to", "1")
    await console.click("#transfer")
    await expect(chat.locator(".msg.in", has_text="now talking to Tom")).to_be_visible()

    # Robot and urobot answers, rendered with their buttons on both pages.
    await console.check("input[name=mode][value=robot]")
    await console.fill("#reply", "Parcels ship within 24 hours.")
    await console.click("#send")
    robot = chat.locator(".msg.in", has_text="Parcels ship")
    await expect(
        robot.locator(".inline-keyboard button", has_text="Talk to a person")
    ).to_be_visible()
    await console.check("input[name=mode][value=urobot]")
    await console.fill("#suggest", "Track my order, Refunds")
    await console.fill("#reply", "I am the <b>urobot</b>.")
    await console.click("#send")
    urobot = chat.locator(".msg.in", has_text="I am the urobot")
    await expect(urobot.locator(".text b")).to_have_text("urobot")
    await expect(urobot.locator(".inline-keyboard button", has_text="Refunds")).to_be_visible()
    await expect(console.locator("#timeline .item.robot")).to_contain_text("Parcels ship")
    await expect(console.locator("#timeline .item.urobot b")).to_have_text("urobot")

    # Two photos at once are an album on both sides.
    photos = [str(jpeg(tmp_path, f"p{i}.jpg", 160 + i, 120)) for i in range(2)]
    await chat.set_input_files("#file", photos)
    await expect(chat.locator(".msg.out .album img.photo")).to_have_count(2)
    await expect(console.locator("#timeline .item.customer img.image")).to_have_count(2)

    # What the bridge does not do on cue, done as the bot: a message edited in place, and
    # a reply keyboard asking for the phone number.
    sent = await bot_api(sandbox, "sendMessage", chat_id=2002, text="Draft one")
    await expect(chat.locator(".msg.in", has_text="Draft one")).to_be_visible()
    await bot_api(
        sandbox,
        "editMessageText",
        chat_id=2002,
        message_id=sent["message_id"],
        text="Final *one*",
        parse_mode="MarkdownV2",
    )
    edited = chat.locator(f".msg[data-message-id='{sent['message_id']}']")
    await expect(edited.locator(".text b")).to_have_text("one")
    await expect(edited.locator(".meta")).to_contain_text("edited")
    await expect(chat.locator(".msg.in", has_text="Draft one")).to_have_count(0)

    await bot_api(
        sandbox,
        "sendMessage",
        chat_id=2002,
        text="May we have your phone number?",
        reply_markup={"keyboard": [[{"text": "Share my phone", "request_contact": True}]]},
    )
    chat.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept("+86 138 0000 1111")))
    await chat.locator("#keyboard .share-contact").click()
    await expect(chat.locator(".msg.out .contact")).to_contain_text("+86 138 0000 1111")
    shared = await eventually(
        lambda: [m for m in telegram.history(2002) if m.payload.get("contact")], what="contact"
    )
    assert shared[0].payload["contact"]["user_id"] == 2002
    assert errors == []
