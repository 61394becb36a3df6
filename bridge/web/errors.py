"""One JSON error shape for every answer the bridge gives: {"error": code, "detail": text}."""

from __future__ import annotations

import logging

from aiohttp import web

log = logging.getLogger("bridge.web")


def error_response(status: int, code: str, detail: str = "") -> web.Response:
    return web.json_response({"error": code, "detail": detail}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    """Turn HTTP errors into the JSON shape and anything unexpected into a logged 500."""
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, "too_large", "request body over the limit")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason.lower().replace(" ", "_"), exc.text or "")
    except Exception:
        # Never a traceback to the caller; the log has it (redacted).
        log.exception("unhandled error on %s %s", request.method, request.rel_url.path)
        return error_response(500, "internal_error", "see the bridge's log")
