"""Reading what strangers send: JSON bodies and secrets in headers or paths.

Every endpoint that takes a JSON body or checks a secret (Udesk's pushes, the call center's
token query, Telegram's webhook, the admin API) reads it through here, so that no input,
however odd, becomes a 500 and a traceback: a body is a value or ``BadJson`` (the endpoint
answers 400), a secret matches or it does not.  Imports nothing of the bridge: the Udesk,
Telegram and web layers all use it.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

#: Deeper than anything Udesk or Telegram sends (a Bot API update nests about a dozen levels,
#: a push fewer).  Catching the parser's RecursionError is not enough: a value that parsed
#: near the interpreter's recursion limit still raises it later, in whatever walks it (a
#: field push nested 930 levels deep parsed, then failed to be encoded for its JSON column).
MAX_DEPTH = 64


class BadJson(ValueError):
    """The body is no JSON value we take; the message says why and may be answered."""


def load_json(raw: bytes) -> Any:
    """The JSON value of a request body; ``BadJson`` for anything else, never another error.

    Bodies are bounded by the web app's size limit (413 before this is called)."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise BadJson("not JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer too long
        raise BadJson(f"not JSON: {str(exc)[:120]}") from None
    if _deeper_than(value, MAX_DEPTH):
        raise BadJson(f"nested too deeply (more than {MAX_DEPTH} levels)")
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels (``[]`` is one level)."""
    if not isinstance(value, dict | list):
        return False
    # A loop, not recursion: the point is not to depend on the interpreter's stack.
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


def secret_matches(given: str, secret: str) -> bool:
    """Whether a secret a caller sent (a header or a path segment) is ours, in constant time.

    aiohttp hands header values over decoded as UTF-8 with ``surrogateescape``, so bytes
    that are no UTF-8 arrive as lone surrogates: ``str.encode()`` raises on them and
    ``hmac.compare_digest`` refuses non-ASCII text.  Encoding back the same way gives the
    bytes the caller sent, which compare safely with ours."""
    try:
        sent = given.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate no byte decodes to: not our secret
        return False
    return hmac.compare_digest(sent, secret.encode())
