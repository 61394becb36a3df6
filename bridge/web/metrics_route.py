"""``GET /metrics``: Prometheus text exposition.

Two parts: the process-wide counters and histograms of ``bridge.metrics`` (prometheus_client's
default registry, with the process and GC collectors), and what belongs to this running
bridge, collected on scrape into a registry of the app's own: record counts per queue and
sessions per state (cheap ``COUNT … GROUP BY status`` on indexed columns, bounded to ~1 s,
never failing the scrape when the database is down) and the Udesk rate budget's counters.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.metrics import DIRECTIONS
from bridge.store.tables import (
    ImSession,
    InboundMessage,
    OutboundMessage,
    QueueColumns,
    RecordStatus,
    SessionState,
    TelegramUpdate,
)
from bridge.web.keys import ENGINE

log = logging.getLogger("bridge.metrics")

SCRAPE_DB_TIMEOUT = 1.0
# The classic text format every Prometheus understands (prometheus_client's own fallback).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

QUEUE_TABLES: tuple[type[QueueColumns], ...] = (TelegramUpdate, OutboundMessage, InboundMessage)
# status column value → label; done and discarded records are history, not counted
STATUS_LABELS = {
    RecordStatus.TODO.value: "pending",
    RecordStatus.DOING.value: "in_flight",
    RecordStatus.FAILED.value: "failed",
}
OPEN_SESSION_STATES = tuple(s.value for s in SessionState if s is not SessionState.CLOSED)


# Age of the oldest transaction of a client on this database, ours excepted.  A transaction
# left open keeps PostgreSQL from cleaning up any row that died after it began (VACUUM and
# index scans alike); the queues then walk ever more dead entries and slow down.  Sessions of
# other roles count where this role may see them (pg_read_all_stats, or a superuser).
OLDEST_TRANSACTION = text(
    "SELECT coalesce(extract(epoch FROM max(now() - xact_start)), 0) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
    "AND backend_type = 'client backend' AND xact_start IS NOT NULL"
)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class DatabaseStats:
    """Queue and session gauges, read from the database when Prometheus scrapes."""

    def __init__(self, engine: AsyncEngine, timeout: float = SCRAPE_DB_TIMEOUT) -> None:
        self.engine = engine
        self.timeout = timeout
        self.ok = False
        self.duration = 0.0
        self.records: dict[tuple[str, str], int] = {}
        self.oldest: dict[str, float] = {}
        self.sessions: dict[str, int] = {}
        self.oldest_transaction: float | None = None

    async def refresh(self) -> None:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout):
                records, oldest, sessions, transaction = await self._query()
        except Exception as exc:  # the database is down or slow: the scrape still answers
            log.debug("metrics: database counts unavailable (%s)", type(exc).__name__)
            self.ok = False
            self.records, self.oldest, self.sessions = {}, {}, {}
            self.oldest_transaction = None
        else:
            self.ok = True
            self.records, self.oldest, self.sessions = records, oldest, sessions
            self.oldest_transaction = transaction
        self.duration = time.monotonic() - started

    async def _query(
        self,
    ) -> tuple[dict[tuple[str, str], int], dict[str, float], dict[str, int], float | None]:
        records: dict[tuple[str, str], int] = {}
        oldest: dict[str, float] = {}
        now = dt.datetime.now(dt.UTC)
        async with self.engine.connect() as conn:
            for table in QUEUE_TABLES:
                direction = DIRECTIONS[table.__tablename__]  # type: ignore[attr-defined]
                rows = await conn.execute(
                    select(table.status, func.count())
                    .where(table.status.in_(list(STATUS_LABELS)))
                    .group_by(table.status)
                )
                for status, count in rows:
                    records[(direction, STATUS_LABELS[status])] = int(count)
                first = await conn.scalar(
                    select(func.min(table.created_at)).where(
                        table.status.in_([RecordStatus.TODO.value, RecordStatus.DOING.value])
                    )
                )
                oldest[direction] = (
                    max(0.0, (now - _aware(first)).total_seconds()) if first is not None else 0.0
                )
            rows = await conn.execute(
                select(ImSession.state, func.count())
                .where(ImSession.state.in_(OPEN_SESSION_STATES))
                .group_by(ImSession.state)
            )
            sessions = {str(state): int(count) for state, count in rows}
            transaction = None
            if self.engine.dialect.name == "postgresql":
                transaction = float(await conn.scalar(OLDEST_TRANSACTION) or 0.0)
        return records, oldest, sessions, transaction

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "bridge_metrics_database_up",
            "1 when the queue and session counts below could be read at this scrape",
        )
        up.add_metric([], 1.0 if self.ok else 0.0)
        yield up
        took = GaugeMetricFamily(
            "bridge_metrics_database_seconds", "Time the database counts took at this scrape"
        )
        took.add_metric([], self.duration)
        yield took
        if not self.ok:
            return  # absent rather than wrong
        records = GaugeMetricFamily(
            "bridge_queue_records",
            "Records in the durable queues by direction and status (pending: waiting, "
            "possibly backing off; in_flight: claimed by a worker; failed: dead letters)",
            labels=["direction", "status"],
        )
        oldest = GaugeMetricFamily(
            "bridge_queue_oldest_pending_seconds",
            "Age of the oldest pending or in-flight record per direction (0 when none)",
            labels=["direction"],
        )
        for direction in DIRECTIONS.values():
            for status in STATUS_LABELS.values():
                records.add_metric([direction, status], self.records.get((direction, status), 0))
            oldest.add_metric([direction], self.oldest.get(direction, 0.0))
        yield records
        yield oldest
        sessions = GaugeMetricFamily(
            "bridge_sessions",
            "Open Udesk IM sessions by state (queued: customers waiting in a Udesk queue)",
            labels=["state"],
        )
        for state in OPEN_SESSION_STATES:
            sessions.add_metric([state], self.sessions.get(state, 0))
        yield sessions
        if self.oldest_transaction is not None:  # PostgreSQL only
            transaction = GaugeMetricFamily(
                "bridge_database_oldest_transaction_seconds",
                "Age of the oldest open transaction on the bridge's database (0 when none); "
                "one open for minutes stops PostgreSQL from cleaning up dead rows",
            )
            transaction.add_metric([], self.oldest_transaction)
            yield transaction


METRICS_REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)
DATABASE_STATS = web.AppKey("metrics_database_stats", DatabaseStats)


async def metrics(request: web.Request) -> web.Response:
    app = request.app
    await app[DATABASE_STATS].refresh()
    body = generate_latest(REGISTRY) + generate_latest(app[METRICS_REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def add_routes(app: web.Application) -> None:
    """``GET /metrics`` with this app's own collectors (database counts from ENGINE)."""
    registry = CollectorRegistry()
    stats = DatabaseStats(app[ENGINE])
    registry.register(stats)
    app[METRICS_REGISTRY] = registry
    app[DATABASE_STATS] = stats
    app.router.add_get("/metrics", metrics)


def watch(app: web.Application, collector: Collector) -> None:
    """Expose an edge's own collector (e.g. the Udesk rate budget's) on ``/metrics``."""
    app[METRICS_REGISTRY].register(collector)
