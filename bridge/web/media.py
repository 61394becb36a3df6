"""``GET /media/{token}``: a customer's file for the agent's browser.

The token is the only key (unguessable, 256 bits); an unknown or expired token is 404 either
way, so guessing learns nothing.  The file path comes from our database, never the URL.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from bridge.http_errors import error_response
from bridge.store.media import MediaStore

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


def media_handler(store: MediaStore) -> web.Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        token = request.match_info.get("token", "")
        if not _TOKEN.match(token):
            return error_response(404, "not_found")
        media = await store.lookup(token)
        if media is None or not await asyncio.to_thread(Path(media.path).is_file):
            return error_response(404, "not_found")
        disposition = (
            "inline"
            if media.content_type.startswith(("image/", "audio/", "video/"))
            else "attachment"
        )
        response = web.FileResponse(
            media.path,
            headers={
                "Content-Type": media.content_type,
                "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(media.filename)}",
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, max-age=3600",
                "Content-Security-Policy": "default-src 'none'; sandbox",
            },
        )
        return response

    return handle
