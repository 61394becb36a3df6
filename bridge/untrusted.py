"""Reading what strangers send: secrets in headers or paths.

Every endpoint that checks a secret (Udesk's pushes, the call center's token query,
Telegram's webhook, the admin API) compares it through here, so that no input, however
odd, becomes a 500 and a traceback: a secret matches or it does not.  Imports nothing of
the bridge: the Udesk, Telegram and web layers all use it.
"""

from __future__ import annotations

import hmac


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
