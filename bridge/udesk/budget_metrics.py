"""The Udesk rate budget's counters on ``/metrics`` (registered by the assembly)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from bridge.udesk.budget import Priority, RateBudget


class BudgetCollector:
    """The Udesk rate budget's own counters (``RateBudget`` keeps plain numbers)."""

    def __init__(self, budget: RateBudget) -> None:
        self.budget = budget

    def collect(self) -> Iterator[Metric]:
        b = self.budget
        waits = CounterMetricFamily(
            "bridge_udesk_budget_waits",
            "Udesk calls that had to wait for the rate budget (UDESK_RATE_LIMIT), by priority",
            labels=["priority"],
        )
        seconds = CounterMetricFamily(
            "bridge_udesk_budget_wait_seconds",
            "Time Udesk calls spent waiting for the rate budget, by priority",
            labels=["priority"],
        )
        for priority in Priority:
            name = priority.name.lower()
            waits.add_metric([name], b.waits_by_priority.get(priority, 0))
            seconds.add_metric([name], b.wait_seconds_by_priority.get(priority, 0.0))
        yield waits
        yield seconds
        refused = CounterMetricFamily(
            "bridge_udesk_previews_refused",
            "Message previews not sent because the rate budget was short",
        )
        refused.add_metric([], b.previews_refused)
        yield refused
        waiting = GaugeMetricFamily(
            "bridge_udesk_budget_waiting", "Udesk calls waiting for the rate budget now"
        )
        waiting.add_metric([], b.waiting)
        yield waiting
        available = b.tokens_available()
        if available is not None:
            tokens = GaugeMetricFamily(
                "bridge_udesk_budget_tokens_available",
                "Udesk calls that could be made right now without waiting",
            )
            tokens.add_metric([], available)
            yield tokens
