"""Reading request parameters the way Udesk does: query string and JSON body together."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .auth import AUTH_PARAMS
from .shapes import MSG_MISSING, udesk_error

# The middleware parses the body once and keeps it here for handlers and the call record.
BODY_KEY = web.RequestKey("udesk_sim.body", object)
CODE_BAD_PARAMS = 2000  # "Unknown error" / "Incorrect parameter format" in the vendor tables
CODE_MISSING = 2062  # "Missing parameters" (POST /im/messages error table)


class Answer(Exception):
    """Raised by a handler (or a helper it calls) to answer at once."""

    def __init__(self, response: web.Response) -> None:
        super().__init__("answer")
        self.response = response


class InvalidJson:
    """Marks a body that was sent but is not JSON."""


async def read_body(request: web.Request) -> Any:
    """JSON when the client says JSON (or sends JSON without saying); raw bytes otherwise,
    as for the ticket file uploads (application/octet-stream)."""
    raw = await request.read()
    if not raw:
        return None
    if request.content_type == "application/octet-stream":
        return raw
    declared_json = request.content_type == "application/json" or request.content_type.endswith(
        "+json"
    )
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return InvalidJson() if declared_json else raw


def body(request: web.Request) -> Any:
    value = request.get(BODY_KEY)
    if isinstance(value, InvalidJson):
        raise Answer(udesk_error(CODE_BAD_PARAMS, "Incorrect parameter format"))
    return value


def params(request: web.Request) -> dict[str, Any]:
    """Query parameters overlaid with the JSON body's top level: the docs' own examples send
    the same parameter in either place."""
    merged: dict[str, Any] = {k: v for k, v in request.query.items() if k not in AUTH_PARAMS}
    value = body(request)
    if isinstance(value, dict):
        merged.update(value)
    return merged


def to_int(value: Any) -> int | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Answer(udesk_error(CODE_BAD_PARAMS, "Incorrect parameter format")) from None


def require(p: dict[str, Any], *names: str) -> None:
    missing = [n for n in names if p.get(n) in (None, "")]
    if missing:
        raise Answer(udesk_error(CODE_MISSING, MSG_MISSING, ", ".join(missing)))
