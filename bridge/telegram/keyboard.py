"""Inline keyboards: the core's ``Button`` rows as Telegram's markup.

Telegram refuses a whole message whose keyboard holds one link it does not take ("Bad
Request: inline keyboard button URL '…' is invalid: …"), so a robot answer carrying a
``javascript:`` or relative link would never reach the customer.  Such a button is dropped
here and the rest of the message goes out.
"""

from __future__ import annotations

import logging
import string
from urllib.parse import urlsplit

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bridge.core.model import Button

log = logging.getLogger("bridge.telegram.keyboard")

# Characters of a host name Telegram takes (TDLib's URL parser); others are letters of an
# internationalised domain, which it takes too.
_HOST_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-._~%")


def button_url(url: str) -> str | None:
    """``url`` when Telegram takes it for a link button, else None.

    Only absolute http and https links: Telegram refuses other schemes, and one without
    a scheme (a relative ``/kb/12`` from the knowledge base) has no host it could open.
    Its own rules on top (TDLib's ``check_link``): a host with a dot in it (or an IPv6
    address), a port from 1 to 65535, nothing blank.  Links with credentials are dropped
    too: they are not shown to customers.
    """
    url = url.strip()
    if not url or any(ch.isspace() or not ch.isprintable() for ch in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError: not a number, or out of range
    except ValueError:
        return None
    host = parts.hostname or ""
    if parts.scheme.lower() not in ("http", "https") or not host or port == 0:
        return None
    if parts.username is not None or parts.password is not None:
        return None
    if ":" in host:
        return url  # an IPv6 address, which urlsplit has checked
    if "." not in host or not host.strip("."):
        return None
    if any(ch.isascii() and ch not in _HOST_CHARACTERS for ch in host):
        return None
    return url


def inline_keyboard(rows: list[list[Button]]) -> InlineKeyboardMarkup | None:
    """The markup for ``rows``: link buttons whose link Telegram would refuse are left out
    (logged without the link, which may carry anything), empty rows too."""
    keyboard = []
    for row in rows:
        line = []
        for button in row:
            if button.url:
                url = button_url(button.url)
                if url is None:
                    log.warning("link button %r dropped: Telegram refuses its URL", button.text)
                    continue
                line.append(InlineKeyboardButton(button.text, url=url))
            elif button.action and "id" in button.action:
                line.append(
                    InlineKeyboardButton(button.text, callback_data=f"b:{button.action['id']}")
                )
        if line:
            keyboard.append(line)
    return InlineKeyboardMarkup(keyboard) if keyboard else None
