"""The bridge's Prometheus metrics, in one place (exposed at ``GET /metrics``).

The counters and histograms here live in prometheus_client's default registry: they are
process-wide (one daemon is one process), and tests that run several bridges in one process
compare deltas.  What belongs to one running bridge (database counts, its rate budget) is
collected on scrape by ``bridge.web.metrics_route``, in a registry of that app's own.

Labels stay bounded: queue directions, record kinds, outcomes, Udesk path templates (ids
replaced by ``{id}``), Udesk answer codes, HTTP statuses.  Never a customer, chat, session
or message id.
"""

from __future__ import annotations

import re

from prometheus_client import Counter, Histogram

ROUTING_RELOADS = Counter(
    "bridge_routing_reloads",
    "Routing file reloads (SIGHUP or POST /admin/routing/reload), by outcome",
    ["outcome"],
)
for _outcome in ("ok", "error"):
    ROUTING_RELOADS.labels(outcome=_outcome)

# --- the durable queues (counted by bridge.store.dispatcher) ----------------------------

# queue table → direction label
DIRECTIONS = {
    "telegram_updates": "updates",
    "outbound_messages": "to_udesk",
    "inbound_messages": "to_telegram",
}
OUTCOMES = ("done", "retry", "failed")

# From 50 ms (a message straight through) to an hour (the default delivery deadline).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)

MESSAGES = Counter(
    "bridge_messages",
    "Records handled by the dispatchers, by direction (updates: Telegram updates processed; "
    "to_udesk: customer → Udesk; to_telegram: agent replies and bot texts → Telegram), "
    "record kind and outcome (done, retry, failed)",
    ["direction", "kind", "outcome"],
)
DELIVERY_SECONDS = Histogram(
    "bridge_delivery_seconds",
    "From a record's creation (update stored, outbound record created, push stored) to its "
    "successful completion, by direction and record kind",
    ["direction", "kind"],
    buckets=LATENCY_BUCKETS,
)

_KIND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def direction_of(queue_name: str) -> str:
    return DIRECTIONS.get(queue_name, "other")


def kind_label(kind: str | None) -> str:
    """Record kinds are the code's own words; anything odd collapses into "other"."""
    return kind if kind and _KIND.match(kind) else "other"


def record_outcome(queue_name: str, kind: str | None, outcome: str, age: float | None) -> None:
    """Count one handled record; ``age`` (seconds since created) is observed when done."""
    direction = direction_of(queue_name)
    label = kind_label(kind)
    MESSAGES.labels(direction=direction, kind=label, outcome=outcome).inc()
    if outcome == "done" and age is not None:
        DELIVERY_SECONDS.labels(direction=direction, kind=label).observe(max(0.0, age))


# --- Udesk calls (counted by bridge.udesk.client, one per attempt) ---------------------

UDESK_CALLS = Counter(
    "bridge_udesk_calls",
    "Calls to the Udesk API (every attempt, retries included), by method, endpoint (path "
    "template) and result: the Udesk answer code, or timeout, connection_error, "
    "server_error, error",
    ["method", "endpoint", "code"],
)
UDESK_CALL_SECONDS = Histogram(
    "bridge_udesk_call_seconds",
    "Duration of one Udesk API attempt, by method and endpoint (path template)",
    ["method", "endpoint"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

_PLAIN_SEGMENT = re.compile(r"^[a-z_]{1,40}$")


def endpoint_template(path: str) -> str:
    """``/im/sessions/123/message_preview`` → ``/im/sessions/{id}/message_preview``.

    Only plain lower-case words survive; any segment with a digit, an upper-case letter or
    another character (ids, tokens) becomes ``{id}``."""
    path = path.split("?", 1)[0]
    segments = [s if not s or _PLAIN_SEGMENT.match(s) else "{id}" for s in path.split("/")]
    return "/".join(segments)[:100]


def udesk_call(method: str, path: str, seconds: float, result: str) -> None:
    """One Udesk attempt; ``result`` is the ``code`` label, given by the Udesk edge
    (``bridge.udesk.errors.result_label``)."""
    endpoint = endpoint_template(path)
    UDESK_CALLS.labels(method=method, endpoint=endpoint, code=result).inc()
    UDESK_CALL_SECONDS.labels(method=method, endpoint=endpoint).observe(max(0.0, seconds))


# --- Telegram flood control (counted by bridge.telegram.gateway) -----------------------

TELEGRAM_RATE_LIMITED = Counter(
    "bridge_telegram_rate_limited",
    "Telegram 429 answers (RetryAfter, flood control) to the bridge's calls",
)
TELEGRAM_RETRY_AFTER_SECONDS = Counter(
    "bridge_telegram_retry_after_seconds",
    "Sum of the retry_after delays Telegram asked for in its 429 answers",
)


def telegram_rate_limited(retry_after: float) -> None:
    TELEGRAM_RATE_LIMITED.inc()
    TELEGRAM_RETRY_AFTER_SECONDS.inc(max(0.0, retry_after))


# --- Udesk pushes (counted by bridge.udesk.push_route) ---------------------------------

PUSHES = Counter(
    "bridge_udesk_pushes",
    "Udesk pushes received at POST /udesk/push/…, by HTTP status answered",
    ["status"],
)
PUSH_ACK_SECONDS = Histogram(
    "bridge_udesk_push_ack_seconds",
    "From a Udesk push's arrival to its 200 (stored durably); Udesk gives up after 5 s",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5),
)


def push_answered(status: int, seconds: float) -> None:
    PUSHES.labels(status=str(status)).inc()
    if status == 200:
        PUSH_ACK_SECONDS.observe(max(0.0, seconds))


# --- retention (issue "privacy"; bridge/store/retention.py) ------------------------------

PURGE_KINDS = (
    "outbound_payloads",
    "inbound_payloads",
    "update_payloads",
    "media",
    "rejected_pushes",
    "sessions",
    "surveys",
    "button_actions",
    "tickets",
)
PURGED = Counter(
    "bridge_purged",
    "Rows purged by the retention job: payloads blanked, or rows (and media files) deleted",
    ["what"],
)
for _what in PURGE_KINDS:
    PURGED.labels(what=_what)
