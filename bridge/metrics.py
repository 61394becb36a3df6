"""The bridge's Prometheus metrics, in one place (exposed at ``GET /metrics``)."""

from __future__ import annotations

from prometheus_client import Counter

ROUTING_RELOADS = Counter(
    "bridge_routing_reloads",
    "Routing file reloads (SIGHUP or POST /admin/routing/reload), by outcome",
    ["outcome"],
)
for _outcome in ("ok", "error"):
    ROUTING_RELOADS.labels(outcome=_outcome)
