"""Which link an inline keyboard button may carry, as Telegram decides it.

The Bot API hands ``InlineKeyboardButton.url`` to TDLib's ``LinkManager::check_link`` and
refuses the whole message when it fails, with ``Bad Request: inline keyboard button URL
'<url>' is invalid: <reason>``.  The rules and reasons below are TDLib's (its URL parser,
then "a host needs a dot"): a scheme other than http or https is refused, none at all
means http, and ``localhost`` or a relative ``/kb/12`` is no web address.  tg:// links are
checked as message links are.
"""

from __future__ import annotations

import ipaddress
import re
import string

from .formatting import check_link

_PROTOCOL_END = re.compile(r"[:/?#@\[\]]")
_HOST_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-._~%")


def button_url_problem(url: str) -> str | None:
    """Why Telegram refuses ``url`` on an inline button; None when it takes it."""
    if url.lower().startswith(("tg:", "ton:")):
        return None if check_link(url) is not None else "Wrong URL"
    rest = url
    end = _PROTOCOL_END.search(url)
    if end is not None and url.startswith("://", end.start()):
        if url[: end.start()].lower() not in ("http", "https"):
            return "Unsupported URL protocol"
        rest = url[end.start() + 3 :]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    # The port follows the last ":" that is not inside an IPv6 address or the user info.
    colon = len(authority) - 1
    while colon > 0 and authority[colon] not in ":]@":
        colon -= 1
    userinfo_host = authority
    if colon > 0 and authority[colon] == ":":
        port = authority[colon + 1 :]
        while len(port) > 1 and port.startswith("0"):
            port = port[1:]
        if not (port.isascii() and port.isdigit()) or not 0 < int(port) <= 65535:
            return "Wrong port number specified in the URL"
        userinfo_host = authority[:colon]
    host = userinfo_host.rpartition("@")[2]
    is_ipv6 = host.startswith("[") and host.endswith("]")
    if is_ipv6:
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return "Wrong IPv6 address specified in the URL"
    if not host:
        return "URL host is empty"
    if host == ".":
        return "Host is invalid"
    if not is_ipv6 and any(ch.isascii() and ch not in _HOST_CHARACTERS for ch in host):
        return "Disallowed character in URL host"
    if not is_ipv6 and "." not in host:
        return "Wrong HTTP URL"
    return None
