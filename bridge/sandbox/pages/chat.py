"""The customer's side: a Telegram-like chat with the bot, served by the Telegram
simulator's app.

The page is plain HTML plus ``chat.js``; it acts only through the simulator's control API
(``/_sim/users``, ``/_sim/inject/...``) and follows the chat with the history long-poll
(``/_sim/chats/{id}/history?version=V``), exactly as a test would.
"""

from __future__ import annotations

from aiohttp import web

from bridge.sandbox.telegram_sim import TelegramSimulator

from .common import add_static, render

DEFAULT_USER = 1001


def add_chat_routes(app: web.Application, sim: TelegramSimulator) -> None:
    """Mount the chat page on the Telegram simulator's app (before it starts)."""

    async def home(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"/sandbox/chat?user={DEFAULT_USER}")

    async def page(request: web.Request) -> web.Response:
        return render(
            "chat.html",
            bot_name=sim.bot_first_name,
            bot_username=sim.bot_username,
        )

    app.router.add_get("/sandbox", home)
    app.router.add_get("/sandbox/chat", page)
    add_static(app)
