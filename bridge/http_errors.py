"""One JSON error shape for every answer the bridge gives: {"error": code, "detail": text}.

A basic module (it imports only ``bridge.logs``) so that every HTTP endpoint answers its
errors alike: the web surface's own routes and middleware (``bridge.web``) and the Udesk
edge's push and token routes (``bridge.udesk``), which sits below the web surface.
"""

from __future__ import annotations

from aiohttp import web

from bridge.logs import redact


def error_response(status: int, code: str, detail: str = "") -> web.Response:
    # Details quote exceptions (Udesk's, Telegram's, the database's), and those can quote a
    # URL with the bot token in it: redacted like the log, whoever asks.
    return web.json_response({"error": code, "detail": redact(detail)}, status=status)
