"""Injected faults: what goes wrong on a path, how often, for how long."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

# http_500 / http_403 / ...: that HTTP status with an HTML error page, as a reverse proxy,
#   firewall or load balancer in front of Udesk answers (not JSON, no code).
# code_2000 / code_9200 / ...: HTTP 200 with that Udesk code in the JSON body, without
#   handling the request (the vendor's error answers, for a refusal on demand).
# clock_skew: the gate's answer to a timestamp too far from Udesk's clock (1002
#   "timestamp expired"), as when the bridge's clock (or Udesk's) is off by minutes.
# timeout: the request is handled, then the answer is held for ``delay`` seconds (longer
#   than a client waits), so the effect happens but the client never learns it: the case
#   that tests a client's idempotency.
# latency: sleep ``delay`` seconds, then handle normally.
# quota: {"code": 429, ...}.
# session_gone: 9200 (2062 on message_preview), without touching the session.
# assigning: the documented "assignment threshold" 2001 answer with count 0 (on
#   /im/queue_status: status "Assigning").
FAULT_KINDS = ("timeout", "latency", "quota", "session_gone", "assigning", "clock_skew")
_HTTP_KIND = re.compile(r"^http_([45]\d\d)$")
_CODE_KIND = re.compile(r"^code_(\d{3,6})$")
DEFAULT_DELAY = {"timeout": 30.0, "latency": 1.0}


def is_valid_kind(kind: str) -> bool:
    return (
        kind in FAULT_KINDS
        or _HTTP_KIND.match(kind) is not None
        or _CODE_KIND.match(kind) is not None
    )


def http_status_of(kind: str) -> int | None:
    match = _HTTP_KIND.match(kind)
    return int(match.group(1)) if match else None


def udesk_code_of(kind: str) -> int | None:
    match = _CODE_KIND.match(kind)
    return int(match.group(1)) if match else None


@dataclass
class Fault:
    path_prefix: str
    kind: str
    count: int | None = None  # remaining firings; None with no duration = until cleared
    duration: float | None = None  # seconds from injection
    delay: float = 0.0
    method: str | None = None  # e.g. "POST"; None = any
    created: float = field(default_factory=time.monotonic)
    fired: int = 0

    def active(self, now: float) -> bool:
        if self.count is not None and self.count <= 0:
            return False
        return self.duration is None or now - self.created < self.duration

    def matches(self, method: str, path: str, now: float) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return path.startswith(self.path_prefix) and self.active(now)


class FaultBook:
    def __init__(self) -> None:
        self.faults: list[Fault] = []

    def add(
        self,
        path_prefix: str,
        kind: str,
        *,
        count: int | None = None,
        duration: float | None = None,
        delay: float | None = None,
        method: str | None = None,
    ) -> Fault:
        if not is_valid_kind(kind):
            raise ValueError(
                f"unknown fault kind {kind!r}; use http_NNN, code_NNNN or one of {FAULT_KINDS}"
            )
        if not path_prefix.startswith("/"):
            path_prefix = "/" + path_prefix
        fault = Fault(
            path_prefix=path_prefix,
            kind=kind,
            count=count,
            duration=duration,
            delay=DEFAULT_DELAY.get(kind, 0.0) if delay is None else delay,
            method=method,
        )
        self.faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The first active fault for this request, with one firing used up."""
        now = time.monotonic()
        self.faults = [f for f in self.faults if f.active(now)]
        for fault in self.faults:
            if fault.matches(method, path, now):
                fault.fired += 1
                if fault.count is not None:
                    fault.count -= 1
                return fault
        return None

    def clear(self) -> None:
        self.faults.clear()
