"""One error root for the Udesk boundary, split into transient and permanent.

Retry logic is ``except UdeskTransientError``; everything else surfaces once with the
vendor's code and message.  The codes come from ``udesk-docs``.

``PERMANENT`` below is the one list of answers that end a request at once.  Anything else
Udesk, or a proxy in front of it, can answer (a proxy's HTML error page, a timeout, a
refused timestamp, a code we do not know) is transient: the caller retries it with backoff
until its deadline, so a customer's message is never dead-lettered by a hiccup.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

CODE_OK = 1000
CODE_QUEUED = 2001
CODE_NO_AGENT = 2002
CODE_PREVIEW_SESSION_GONE = 2062
CODE_NOT_ACTIVATED = 2065
CODE_SESSION_GONE = 9200
# customers-api.txt: 2005 "The resource was not found" (get_customer with no match).
CODE_NOT_FOUND = 2005


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
    """Worth retrying: timeouts, connection errors, 5xx, quota exceeded, anything that
    does not prove the request can never succeed."""


class UdeskTimeoutError(UdeskTransientError, TimeoutError):
    pass


class UdeskConnectionError(UdeskTransientError, ConnectionError):
    pass


class UdeskServerError(UdeskTransientError):
    """HTTP 5xx or an unparseable answer from Udesk."""


class UdeskUnexpectedAnswer(UdeskTransientError):
    """An answer that is no verdict on the request: a non-JSON 4xx (a proxy's or load
    balancer's error page), JSON without a code, or a code not in ``PERMANENT``."""


class UdeskQuotaExceeded(UdeskTransientError):
    """Udesk refused the call for exceeding the API quota."""


class UdeskBadSignature(UdeskTransientError):
    """1001 (credentials refused) or 1002 (timestamp too far from Udesk's clock, or nonce
    used before).  Nothing about the request itself: once the operator fixes the
    credentials or the clock, the same request passes, so it waits for that (``/readyz``
    names the problem) instead of being dead-lettered."""


class UdeskPermanentError(UdeskError):
    """Udesk answered with a code that retrying will not change (``PERMANENT``)."""


class UdeskSessionGone(UdeskPermanentError):
    """9200 on messages, 2062 on previews: the session is closed or unknown."""


class UdeskNotActivated(UdeskPermanentError):
    """2065: the endpoint (message preview) is not enabled for this company."""


class UdeskNoAgentOnline(UdeskPermanentError):
    """2002 on session creation."""


# Udesk documents 429 in the body for "API interface exceeds request limit"
# (customers-api.txt, error codes).  The signature failure codes are not in the vendor's
# files (they say only that a nonce is single use within 15 minutes); the simulator uses
# these, and the client treats both as transient (``UdeskBadSignature``).
CODE_QUOTA_EXCEEDED = 429
CODE_BAD_SIGNATURE = 1001
CODE_NONCE_OR_TIMESTAMP = 1002


@dataclass(frozen=True)
class Permanent:
    """An answer that proves the request can never succeed, and the error it becomes."""

    error: type[UdeskPermanentError]
    why: str


# The answers that end a request at once (the record is dead-lettered and the customer
# told, or the caller acts on the specific error), by Udesk's code in a JSON answer.  Only
# a code the vendor documents for a refusal of the request itself belongs here; the rest
# is retried (see the module docstring).  2062 on message_preview is UdeskSessionGone.
PERMANENT: Mapping[int, Permanent] = MappingProxyType(
    {
        2000: Permanent(
            UdeskPermanentError,
            # Listed as "Unknown error", but every row of the vendor's tables under it is a
            # parameter Udesk refused; the same parameters are refused again.
            "a parameter was refused (missing, malformed, or taken by another customer)",
        ),
        CODE_NO_AGENT: Permanent(
            UdeskNoAgentOnline,
            # Asking again now gets the same answer; the caller routes elsewhere instead.
            "no agent online",
        ),
        CODE_NOT_FOUND: Permanent(
            UdeskPermanentError,
            # The customer, ticket, robot or scene named does not exist.
            "the resource named was not found",
        ),
        2060: Permanent(
            UdeskPermanentError,
            # customers-api.txt: the lookup ``type`` is not one Udesk knows.
            "invalid unique identifier type",
        ),
        2062: Permanent(
            UdeskPermanentError,
            # POST /im/messages: "Missing parameters"; tickets: conflicting parameters; on
            # message_preview: the session is closed (UdeskSessionGone, see the client).
            "missing or conflicting parameters",
        ),
        CODE_NOT_ACTIVATED: Permanent(
            UdeskNotActivated,
            # The company has not enabled this endpoint (message preview).
            "interface not activated",
        ),
        CODE_SESSION_GONE: Permanent(
            UdeskSessionGone,
            # The session is closed or unknown: the caller opens a new one.
            "session not found or closed",
        ),
        11012: Permanent(
            UdeskPermanentError,
            # im-open-api.txt, agent status: the group asked about does not exist.
            "the agent group does not exist",
        ),
        20573: Permanent(UdeskPermanentError, "vote_number is not a positive integer"),
        20576: Permanent(
            UdeskPermanentError,
            # tickets-api.txt: a ticket is rated once.
            "the ticket has been evaluated already",
        ),
        40001: Permanent(
            UdeskPermanentError, "customer identifier type and value must come together"
        ),
        40002: Permanent(UdeskPermanentError, "unsupported customer_id_type"),
        40003: Permanent(UdeskPermanentError, "no customer for that identifier"),
        206201: Permanent(UdeskPermanentError, "parameter page is invalid"),
        206211: Permanent(UdeskPermanentError, "parameter page_size is invalid"),
        404: Permanent(
            UdeskPermanentError,
            # Udesk's own JSON {"code": 404}: it has no such endpoint (the robot-evaluation
            # path is not documented).  A proxy's non-JSON 404 page is not this.
            "Udesk has no such endpoint",
        ),
    }
)


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
