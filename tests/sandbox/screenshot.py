"""Regenerate the README's screenshot of both sandbox pages, side by side:

    .venv/bin/python -m tests.sandbox.screenshot [docs/sandbox.png]

It runs the real sandbox on free ports, plays a short conversation through the pages in
headless Chromium (/usr/bin/chromium), and photographs the two pages in one frame.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from playwright.async_api import Page, async_playwright

from bridge.sandbox.run import Sandbox
from tests.sandbox.conftest import CHROMIUM, CHROMIUM_ARGS, eventually, sandbox_options

# The customer's photo, drawn by the browser itself (the sandbox has no image library).
PARCEL = """<body style="margin:0;width:360px;height:240px;display:grid;place-items:center;
background:linear-gradient(135deg,#f6d7a7,#e2a66b);font:600 20px sans-serif;color:#5b3a1a">
<div style="width:200px;height:120px;background:#c8874a;border:4px solid #8d5a2b;
border-radius:6px;display:grid;place-items:center;transform:rotate(-6deg);
clip-path:polygon(0 0,100% 0,100% 70%,82% 100%,0 100%)">ORDER #1042</div></body>"""

FRAME = """<body style="margin:0;display:flex;gap:12px;padding:12px;background:#3b4552">
<iframe src="{chat}" style="width:470px;height:796px;border:0;border-radius:8px"></iframe>
<iframe src="{console}" style="flex:1;height:796px;border:0;border-radius:8px"></iframe></body>"""


async def play(sandbox: Sandbox, page: Page, photo: Path) -> None:
    await page.goto(f"{sandbox.telegram_url}/sandbox/chat?user=1001&name=Alice")
    await page.click("button[data-command='/start']")
    await page.locator(".msg.in").first.wait_for()
    await page.fill("#text", "Hi! My parcel arrived with a crushed corner.")
    await page.press("#text", "Enter")
    # Each step waits for the previous answer, so the chat reads in a natural order.
    await page.locator(".msg.in", has_text="what can I help").wait_for()
    await page.set_input_files("#file", str(photo))
    await eventually(lambda: len(sandbox.udesk.messages_for("tg-1001")) >= 2, what="photo")
    sandbox.telegram.inject_text({"id": 1002, "first_name": "Bob"}, "Do you ship to Almaty?")
    await sandbox.udesk.agent_reply(
        "tg-1001",
        "Sorry about that, Alice! I have sent a <b>free replacement</b>: "
        '<a href="https://example.com/track/1042">track it here</a>.',
        type="rich",
    )
    await page.locator(".msg.in", has_text="free replacement").wait_for()
    await page.fill("#text", "Thank you, that was quick!")
    await page.press("#text", "Enter")
    await eventually(lambda: len(sandbox.udesk.messages_for("tg-1001")) >= 3, what="thanks")
    await sandbox.udesk.close_session("tg-1001", survey=True)
    await page.locator(".inline-keyboard button", has_text="5 stars").wait_for()


async def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = Sandbox(sandbox_options(Path(tmp) / "data"))
        await sandbox.start()
        try:
            async with async_playwright() as p:
                context = await p.chromium.launch_persistent_context(
                    str(Path(tmp) / "profile"),
                    executable_path=CHROMIUM,
                    headless=True,
                    args=CHROMIUM_ARGS,
                    viewport={"width": 1400, "height": 820},
                )
                drawing = await context.new_page()
                await drawing.set_viewport_size({"width": 360, "height": 240})
                await drawing.set_content(PARCEL)
                photo = Path(tmp) / "parcel.png"
                await drawing.screenshot(path=str(photo))
                await play(sandbox, await context.new_page(), photo)
                frame = await context.new_page()
                console = f"{sandbox.console_url}#tg-1001"
                await frame.set_content(FRAME.format(chat=sandbox.chat_url, console=console))
                await asyncio.sleep(3)  # both pages poll; let them settle
                await frame.screenshot(path=str(out))
                await context.close()
        finally:
            await sandbox.stop()


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/sandbox.png")
    asyncio.run(main(target))
    print(f"wrote {target} ({target.stat().st_size // 1024} KB)")
