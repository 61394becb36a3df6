"""Logging: JSON lines (or console text on a TTY) with secrets redacted everywhere.

The redacting filter sits on the root handler, so it also covers httpx's, aiohttp's and
PTB's own loggers: the bot token lives in every Bot API URL httpx logs.  The same redactor
(``redact``) cleans error text that leaves the process another way: kept in the database
(``bridge.store.tables.ErrorText``) and in the bridge's HTTP error answers.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)

# Telegram bot tokens (in Bot API URLs, also percent-encoded as in a redirect's return
# address) and Udesk signing parameters in any URL.
_PATTERNS = [
    (re.compile(r"bot\d{3,}(?::|%3A)[A-Za-z0-9_-]{20,}", re.I), "bot<redacted>"),
    (re.compile(r"\b\d{6,}(?::|%3A)[A-Za-z0-9_-]{30,}\b", re.I), "<redacted-token>"),
    (re.compile(r"((?:sign|nonce|api_token|token|secret)=)[^&\s\"']+", re.I), r"\1<redacted>"),
]
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class Redactor(logging.Filter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Know these secrets too, as they are and percent-encoded (a URL quoting a URL)."""
        known = set(self.secrets)
        for secret in secrets:
            if len(secret) >= 4:
                known |= {secret, quote(secret, safe="")}
        self.secrets = sorted(known, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "<redacted>")
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = self.redact(message)
        record.args = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        record.exc_info = None
        # ``extra=`` fields end up in the JSON lines too.
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD and isinstance(value, str):
                record.__dict__[key] = self.redact(value)
        return True


# The process's redactor: the token shapes from the start, the settings' secrets once known
# (``remember_secrets``, called by whatever reads the settings: setup_logging, BridgeApp).
# One per process, as logging's own configuration is: error text is written to the
# database from places (column types, the queue) that no settings object reaches.
_PROCESS = Redactor()


def remember_secrets(secrets: Iterable[str]) -> None:
    """Make ``redact`` (and the log handler) hide these values as well."""
    _PROCESS.add(secrets)


def redact(text: str) -> str:
    """``text`` without any secret the process knows or any bot token: for error text kept
    in the database or given in an answer, which may quote exceptions quoting URLs."""
    return _PROCESS.redact(text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        cid = correlation_id.get()
        if cid:
            entry["correlation_id"] = cid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


class ConsoleFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        cid = correlation_id.get()
        return f"{line} [{cid}]" if cid else line


def setup_logging(level: str, fmt: str | None, secrets: Iterable[str] = ()) -> None:
    fmt = fmt or ("console" if sys.stderr.isatty() else "json")
    handler = logging.StreamHandler(sys.stderr)
    remember_secrets(secrets)
    handler.addFilter(_PROCESS)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request URL at INFO, and PTB's URLs contain the bot token; the
    # redactor would catch it, but the lines are noise anyway.
    for noisy in ("httpx", "httpcore", "aiohttp.access", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
