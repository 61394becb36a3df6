"""A dispatcher: claims records from one durable queue and hands each to a handler.

The handler decides the outcome (``Done``, ``Retry``, ``Fail``); the dispatcher records it
with a short write of its own (``DurableQueue.single``).  Records of different locks run
concurrently up to ``concurrency``; records of one lock never do (the queue guarantees it).
While a handler runs, its lease is extended so another replica does not take the record over.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bridge import metrics, tasks
from bridge.logs import correlation_id
from bridge.store.db import DATABASE_DOWN, is_bad_data
from bridge.store.group_commit import GroupCommit
from bridge.store.notify import Waker
from bridge.store.queue import Claimed, DurableQueue
from bridge.store.tables import utcnow

log = logging.getLogger("bridge.store.dispatcher")


@dataclass(frozen=True)
class Done:
    values: dict[str, Any] = field(default_factory=dict)
    # The handler completed the record inside its own transaction (queue.complete_in).
    already_recorded: bool = False


@dataclass(frozen=True)
class Retry:
    error: str
    delay: float | None = None  # None: the dispatcher's backoff for this attempt
    values: dict[str, Any] = field(default_factory=dict)  # e.g. progress kept in the payload


@dataclass(frozen=True)
class Fail:
    error: str
    values: dict[str, Any] = field(default_factory=dict)


Outcome = Done | Retry | Fail
Handler = Callable[[Claimed], Awaitable[Outcome]]


def by_kind(handlers: Mapping[str, Handler], default: Handler) -> Handler:
    """One handler for a queue whose records of some kinds are handled elsewhere (e.g. the
    outbound queue's ``erase`` records, by the privacy surface)."""

    async def handle(record: Claimed) -> Outcome:
        return await handlers.get(record.kind, default)(record)

    return handle


MAX_CRASHES = 5
CHAIN = 8  # records of one lock a worker takes in a row (Dispatcher._handle)


def storable(outcome: Outcome) -> Outcome:
    """``outcome`` with nothing a database could refuse: the error with a NUL, a control
    character or a lone surrogate escaped (``\\x00``), no other values."""
    if isinstance(outcome, Done):
        return Done(already_recorded=outcome.already_recorded)
    error = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in outcome.error)
    if isinstance(outcome, Fail):
        return Fail(error)
    return Retry(error, delay=outcome.delay)


def backoff(attempt: int, *, base: float = 1.0, cap: float = 300.0) -> float:
    """Capped exponential backoff with full jitter."""
    return random.uniform(0, min(cap, base * 2 ** max(0, attempt - 1)))


class Dispatcher:
    def __init__(
        self,
        queue: DurableQueue,
        handler: Handler,
        *,
        waker: Waker,
        channel: str,
        concurrency: int = 16,
        poll_interval: float = 1.0,
        backoff_base: float = 1.0,
        backoff_cap: float = 300.0,
        prefetch: Callable[[list[Claimed]], Awaitable[None]] | None = None,
        recovery_interval: float | None = None,
    ) -> None:
        """``prefetch``: called with each batch of claimed records before their handlers
        start, to read what they need together (one query, not one per record).
        ``recovery_interval``: how often dead workers' records are looked for; by default
        every second on PostgreSQL, where a dead worker is seen at once (its presence is
        gone, ``bridge.store.presence``), and a quarter of the lease on SQLite, where the
        only other worker there could be is a stuck one of this very process."""
        self.queue = queue
        self.handler = handler
        self.prefetch = prefetch
        self.waker = waker
        self.channel = channel
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._inflight: dict[int, asyncio.Task[None]] = {}
        # Records that finish at about the same moment are marked done together (one
        # statement on PostgreSQL, in autocommit: ``queue.single``); a record's handler
        # returns only once its own write committed, so the next record of its lock is
        # claimable only then.
        self._completions = GroupCommit(queue.single, name=f"complete:{queue.name}")
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._lease_task: asyncio.Task[None] | None = None
        self._recovery_task: asyncio.Task[None] | None = None
        self._slot_freed = asyncio.Event()
        if recovery_interval is None:
            lease = queue.lease.total_seconds()
            recovery_interval = 1.0 if queue.on_postgres else max(0.5, lease / 4)
        self.recovery_interval = recovery_interval
        self._database_down = False
        # Called when the database answers again after an outage (e.g. to catch up on
        # Udesk pushes that were refused meanwhile).
        self.on_recovered: Callable[[], None] | None = None
        # Claims started so far: a claim made while a record was in flight may have passed
        # over a later record of its lock, which then needs a claim when it finishes.
        self._claims = 0

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def start(self, supervisor: tasks.Supervisor | None = None) -> None:
        """Start claiming, renewing leases and taking over dead workers' records, each
        loop restarted should it crash (``supervisor``: the daemon's, which /readyz reads)."""
        supervisor = supervisor or tasks.Supervisor()
        name = self.queue.name
        self._loop_task = supervisor.run(f"{name} dispatcher", self._run)
        self._lease_task = supervisor.run(f"{name} lease renewal", self._renew_leases)
        self._recovery_task = supervisor.run(
            f"{name} takeover of dead workers", self._take_over_dead_workers
        )

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; let running handlers finish within ``timeout``, release the rest."""
        self._stopping = True
        # Let the claim loop notice and leave on its own: cancelling it in the middle of a
        # claim would abandon a transaction (on SQLite, with the write lock held).
        self.waker.wake(self.channel)
        self._slot_freed.set()
        if self._loop_task is not None:
            await asyncio.wait([self._loop_task], timeout=5.0)
        await tasks.cancel_and_wait(self._loop_task)
        if self._inflight:
            await asyncio.wait(list(self._inflight.values()), timeout=timeout)
        for record_id, task in list(self._inflight.items()):
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            try:
                await self.queue.release(record_id)
            except Exception:
                log.warning("could not release %s/%s", self.queue.name, record_id)
        await tasks.cancel_and_wait(self._lease_task, self._recovery_task)

    async def _run(self) -> None:
        while not self._stopping:
            free = self.concurrency - len(self._inflight)
            claimed: list[Claimed] = []
            if free > 0:
                try:
                    self._claims += 1
                    claimed = await self.queue.claim(free)
                except DATABASE_DOWN as exc:
                    # The type only: a driver error can quote the statement's parameters
                    # (message content); the details are at DEBUG.
                    log.warning(
                        "database unavailable for %s: %s", self.queue.name, type(exc).__name__
                    )
                    log.debug("database error on %s", self.queue.name, exc_info=True)
                    await asyncio.sleep(self.poll_interval)
                    continue
            if claimed and self.prefetch is not None:
                try:
                    await self.prefetch(claimed)
                except Exception as exc:  # the handlers then read for themselves
                    log.debug("prefetch for %s failed: %s", self.queue.name, type(exc).__name__)
            for record in claimed:
                self._inflight[record.id] = tasks.create(
                    self._handle(record, self._claims), name=f"{self.queue.name}:{record.id}"
                )
            if len(claimed) == free and free > 0:
                continue  # there may be more ready right now
            if free <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            await self.waker.wait(self.channel, self.poll_interval)

    async def _handle(self, record: Claimed, claims: int) -> None:
        """Handle ``record`` and, while its customer has more whose turn has come, their
        next ones: the statement that records a record done is followed by one that takes
        the next record of its lock (``complete_many_then_claim_in``), so a busy customer's
        line moves without waiting for the claim loop.  At most ``CHAIN`` in a row, so one
        customer's backlog never keeps the slot from the others for long.  ``claims``: the
        claims started when ``record`` was claimed."""
        task = asyncio.current_task()
        current: Claimed | None = record
        chained = 0
        left_waiting = False
        try:
            while current is not None:
                # Only a customer with more waiting: for the others, looking would cost a
                # statement per batch and find nothing.
                chain = current.more_waiting and not self._stopping and chained < CHAIN
                following = await self._handle_one(current, chain=chain)
                if following is not None and task is not None:
                    self._inflight[following.id] = task
                self._inflight.pop(current.id, None)
                left_waiting = current.more_waiting and following is None
                current, chained = following, chained + 1
        finally:
            if current is not None:
                self._inflight.pop(current.id, None)
            self._slot_freed.set()
            # A finished record unblocks the next one of its lock, if there is one: one
            # that waited when it was claimed and was not taken here, or one that may have
            # arrived since (a claim ran meanwhile and had to pass it over).  Otherwise a
            # claim now would find nothing: at a few messages a second, that was every
            # other statement a delivery cost.
            if left_waiting or current is not None or self._claims != claims:
                self.waker.wake(self.channel)

    async def _handle_one(self, record: Claimed, *, chain: bool) -> Claimed | None:
        """Handle one record and record its outcome; with ``chain``, the next record of its
        lock when this one is done and the next one's turn has come."""
        # Every log line about this record carries its correlation id (observability).
        cid = correlation_id.set(record.correlation_id or f"{self.queue.name}:{record.id}")
        try:
            try:
                outcome = await self.handler(record)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug in a handler must not lose the record...
                log.exception("handler crashed on %s/%s", self.queue.name, record.id)
                error = f"internal error: {type(exc).__name__}: {exc}"
                # ...nor block the customer's later records forever: after a few tries it
                # goes to the dead letter, where an admin can retry it once fixed.  A value
                # the database refuses is refused again: that is the dead letter at once.
                if record.attempts >= MAX_CRASHES or is_bad_data(exc):
                    outcome = Fail(error)
                else:
                    outcome = Retry(error)
            following = await self._record(record, outcome, chain=chain)
            self._observe(record, outcome)
            return following
        finally:
            correlation_id.reset(cid)

    async def _record(
        self, record: Claimed, outcome: Outcome, *, chain: bool = False
    ) -> Claimed | None:
        for attempt in range(30):
            try:
                if isinstance(outcome, Done):
                    if not outcome.already_recorded:
                        # Should another process hold the next record of the lock, the
                        # chained claim takes nothing (queue.complete_many_then_claim_in).
                        return await self._complete(record, outcome, chain=chain)
                elif isinstance(outcome, Fail):
                    log.warning("gave up on %s/%s: %s", self.queue.name, record.id, outcome.error)
                    await self.queue.fail(record.id, error=outcome.error, **outcome.values)
                else:
                    delay = outcome.delay
                    if delay is None:
                        delay = backoff(
                            record.attempts, base=self.backoff_base, cap=self.backoff_cap
                        )
                    await self.queue.retry(
                        record.id, delay=delay, error=outcome.error, **outcome.values
                    )
                return None
            except DATABASE_DOWN as exc:
                if is_bad_data(exc) and outcome != (plain := storable(outcome)):
                    # The outcome carries a value the database refuses (a NUL in an error
                    # text quoted from outside): writing it again would fail forever, and the
                    # record, its lease run out, be handled again and again.  Its kind and
                    # error are kept, readably escaped; its other values are dropped.
                    log.warning(
                        "outcome of %s/%s not storable (%s); recording it plainly",
                        self.queue.name,
                        record.id,
                        type(exc).__name__,
                    )
                    outcome = plain
                    continue
                # The database is down: keep trying; if we never manage, the lease expires
                # and the record is retried, which the dedup key makes harmless.
                log.warning(
                    "cannot record outcome of %s (%s), retrying", record.id, type(exc).__name__
                )
                log.debug("recording the outcome of %s failed", record.id, exc_info=True)
                await asyncio.sleep(min(5.0, 0.2 * 2**attempt))
        return None

    async def _complete(self, record: Claimed, outcome: Done, *, chain: bool) -> Claimed | None:
        """Record ``record`` done, in a group commit; with ``chain``, also take the next
        record of its lock and return it."""
        _, following = await self._completions.run_together(
            self.queue.complete_many_then_claim_in,
            (record.id, outcome.values, record.lock if chain else None),
        )
        return following  # type: ignore[no-any-return]

    def _observe(self, record: Claimed, outcome: Outcome) -> None:
        """Count the outcome (and the delivery latency of a done record) for /metrics."""
        name = "retry"
        if isinstance(outcome, Done):
            name = "done"
        elif isinstance(outcome, Fail):
            name = "failed"
        age = (utcnow() - record.created_at).total_seconds()
        metrics.record_outcome(self.queue.name, record.kind, name, age)
        log.debug(
            "%s/%s %s (attempt %d, %.3fs since created)",
            self.queue.name,
            record.id,
            name,
            record.attempts,
            age,
            extra={"queue": self.queue.name, "record_id": record.id, "outcome": name},
        )

    async def _take_over_dead_workers(self) -> None:
        """Put dead workers' records back in line and wake the claim loop for them: a
        crashed process costs its customers about ``recovery_interval``, not a lease."""
        while True:
            await asyncio.sleep(self.recovery_interval)
            if self._stopping:
                return
            try:
                recovered = await self.queue.recover_expired(keep=set(self._inflight))
            except DATABASE_DOWN as exc:
                log.debug("recovery on %s failed: %s", self.queue.name, type(exc).__name__)
                continue
            if recovered:
                self.waker.wake(self.channel)

    async def _renew_leases(self) -> None:
        interval = max(1.0, self.queue.lease.total_seconds() / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.queue.extend_leases(list(self._inflight))
            except DATABASE_DOWN:
                log.warning("could not extend leases on %s", self.queue.name)
