"""One error root for the Udesk boundary, split into transient and permanent.

Retry logic is ``except UdeskTransientError``; everything else surfaces once with the
vendor's code and message.  The codes come from ``udesk-docs``.
"""

from __future__ import annotations

from typing import Any

CODE_OK = 1000
CODE_QUEUED = 2001
CODE_NO_AGENT = 2002
CODE_PREVIEW_SESSION_GONE = 2062
CODE_NOT_ACTIVATED = 2065
CODE_SESSION_GONE = 9200


class UdeskError(Exception):
    """Any failure talking to Udesk."""

    def __init__(self, message: str, *, code: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.body = body

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} (udesk code {self.code})" if self.code is not None else base


class UdeskTransientError(UdeskError):
    """Worth retrying: timeouts, connection errors, 5xx, quota exceeded."""


class UdeskTimeoutError(UdeskTransientError, TimeoutError):
    pass


class UdeskConnectionError(UdeskTransientError, ConnectionError):
    pass


class UdeskServerError(UdeskTransientError):
    """HTTP 5xx or an unparseable answer from Udesk."""


class UdeskQuotaExceeded(UdeskTransientError):
    """Udesk refused the call for exceeding the API quota."""


class UdeskPermanentError(UdeskError):
    """Udesk answered with a code that retrying will not change."""


class UdeskBadSignature(UdeskPermanentError):
    pass


class UdeskSessionGone(UdeskPermanentError):
    """9200 on messages, 2062 on previews: the session is closed or unknown."""


class UdeskNotActivated(UdeskPermanentError):
    """2065: the endpoint (message preview) is not enabled for this company."""


class UdeskNoAgentOnline(UdeskPermanentError):
    """2002 on session creation."""


# Udesk documents 429 in the body for "API interface exceeds request limit"
# (customers-api.txt, error codes).  The signature failure codes are not in the vendor's
# files; the simulator uses these and the client treats both as permanent.
CODE_QUOTA_EXCEEDED = 429
CODE_BAD_SIGNATURE = 1001
CODE_NONCE_OR_TIMESTAMP = 1002


def result_label(code: int | None, error: BaseException | None = None) -> str:
    """The ``code`` label of ``bridge_udesk_calls``: the Udesk code when there is one, else
    the kind of failure."""
    if code is not None and -1000 < code < 1_000_000:
        return str(code)
    if error is None:
        return "no_code"
    if isinstance(error, UdeskTimeoutError):
        return "timeout"
    if isinstance(error, UdeskConnectionError):
        return "connection_error"
    if isinstance(error, UdeskServerError):
        return "server_error"
    return "error"
