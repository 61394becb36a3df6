"""The web server's side of the one JSON error shape (``bridge.http_errors``): HTTP errors
and anything unexpected become that shape; aiohttp's refusals of malformed requests are
logged as one line."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from bridge.http_errors import error_response

log = logging.getLogger("bridge.web")


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
    except web.RequestPayloadError as exc:
        # The body could not be read as its headers say (a Content-Encoding it is not in, a
        # broken chunk): the caller's bytes, not our fault, so no traceback.
        log.warning("unreadable request body on %s: %s", request.rel_url.path, _cause(exc))
        return error_response(400, "bad_request", "the body cannot be read as its headers say")
    except Exception:
        # Never a traceback to the caller; the log has it (redacted).
        log.exception("unhandled error on %s %s", request.method, request.rel_url.path)
        return error_response(500, "internal_error", "see the bridge's log")


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__
    return type(cause).__name__ if cause is not None else type(exc).__name__


class RefusedRequests(logging.Filter):
    """aiohttp answers 400 to a request its HTTP parser refuses (a control character in a
    header, raw bytes in the URL, a broken chunked body) and logs that at ERROR with a
    traceback; so it does for the rest of a body that cannot be decoded, which it reads
    after our 400 to keep the connection.  A stranger's malformed bytes are no fault of
    ours: one WARNING line naming the parser's complaint, without the traceback (which
    quotes the bytes, headers and all)."""

    def filter(self, record: logging.LogRecord) -> bool:
        refused = _refusal(record.exc_info[1] if record.exc_info else None)
        if refused is not None:
            said = record.getMessage()  # "Error handling request from <address>", ...
            record.msg = "a malformed request (%s, answered %d); aiohttp said: %s"
            record.args = (type(refused).__name__, refused.code, said)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
        return True


def _refusal(exc: BaseException | None) -> HttpProcessingError | None:
    """The parser's 4xx complaint behind ``exc``, if that is what it is."""
    while exc is not None:
        if isinstance(exc, HttpProcessingError):
            return exc if 400 <= (exc.code or 0) < 500 else None
        if not isinstance(exc, web.RequestPayloadError):
            return None
        exc = exc.__cause__  # the body's decoding error, wrapped for the handler
    return None
