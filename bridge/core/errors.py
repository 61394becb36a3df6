"""The core's error root: the edges translate their wire errors into these.

Retry logic reads ``except TransientError``; everything else is final for that record.
"""

from __future__ import annotations


class BridgeError(Exception):
    """A failure talking to Udesk or Telegram, in the core's terms."""


class TransientError(BridgeError):
    """Worth retrying later; ``retry_after`` when the other side said how long to wait."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(BridgeError):
    """Retrying will not help."""


class SessionGone(PermanentError):
    """Udesk says the session is closed or unknown (9200, 2062 on previews)."""


class NoAgentOnline(PermanentError):
    """Udesk answered 2002 to a request for an agent."""


class PreviewUnavailable(PermanentError):
    """Message previews are not activated for this Udesk company (2065)."""


class ChatUnreachable(PermanentError):
    """The user blocked the bot or the chat is gone (Telegram 403)."""


class ContentRejected(PermanentError):
    """Telegram refused what we sent even as plain text."""


class FileTooBig(PermanentError):
    """Telegram will not hand bots files over 20 MB."""
