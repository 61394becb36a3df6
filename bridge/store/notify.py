"""Wake dispatchers when work arrives: in-process events, plus LISTEN/NOTIFY on PostgreSQL
so a record stored by one replica wakes the dispatchers of the others.  Dispatchers also
poll on a timer, so a lost notification only costs latency, never a message."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

log = logging.getLogger("bridge.store.notify")

# The queues' channels, named for the direction their records go.
UPDATES = "bridge_updates"  # telegram_updates: what customers sent, still to be read
TO_UDESK = "bridge_outbound"  # outbound_messages
TO_TELEGRAM = "bridge_inbound"  # inbound_messages


class Waker:
    """One event per channel; ``notify`` sets it locally, PostgreSQL spreads it further."""

    def __init__(self, channels: list[str]) -> None:
        self.events = {name: asyncio.Event() for name in channels}
        self._conn: Any = None
        # Our own notifications carry this as their payload and are not acted on when they
        # come back over LISTEN: this process's dispatchers were woken at the commit, and a
        # second wake made a second claim that found nothing (a round trip per batch).
        self.origin = secrets.token_hex(6)

    def wake(self, channel: str) -> None:
        event = self.events.get(channel)
        if event is not None:
            event.set()

    async def wait(self, channel: str, timeout: float) -> None:
        event = self.events[channel]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        event.clear()

    async def listen(self, dsn: str) -> None:
        """Start listening on PostgreSQL; failures fall back to polling, logged once."""
        import asyncpg

        try:
            self._conn = await asyncpg.connect(dsn)
            for name in self.events:
                await self._conn.add_listener(name, self._on_notify)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("LISTEN unavailable, dispatchers will poll: %s", type(exc).__name__)
            self._conn = None

    async def keep_listening(self, dsn: str, every: float = 10.0) -> None:
        """Reconnect LISTEN after PostgreSQL restarts (until then dispatchers just poll)."""
        while True:
            await asyncio.sleep(every)
            if self._conn is None or self._conn.is_closed():
                self._conn = None
                await self.listen(dsn)
                if self._conn is not None:
                    log.info("LISTEN reconnected")
                    for name in self.events:
                        self.wake(name)  # anything notified while we were deaf

    def _on_notify(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        if payload != self.origin:
            self.wake(channel)

    async def close(self) -> None:
        if self._conn is not None:
            try:
                await self._conn.close(timeout=2)
            except Exception:  # closing a dead connection must not stop shutdown
                log.debug("LISTEN connection close failed", exc_info=True)
            self._conn = None


def mark(session: AsyncSession, channel: str) -> None:
    """Note that this transaction wrote to ``channel``'s queue (see ``waking_sessions``)."""
    wake: set[str] = session.info.setdefault("wake", set())
    wake.add(channel)


def waking_sessions(engine: AsyncEngine, waker: Waker) -> async_sessionmaker[AsyncSession]:
    """A session factory whose commits wake the dispatchers of the queues they wrote to.

    Code that writes a queue record marks the channel (``mark``); just
    before the commit the marks become ``pg_notify`` calls (so other replicas wake) and
    right after it this process's own dispatchers are woken.  No call site has to remember.
    """

    class WakingSession(Session):
        pass

    @event.listens_for(WakingSession, "before_commit")
    def _notify(session: Session) -> None:
        channels = sorted(session.info.get("wake") or ())
        if channels and session.bind is not None and session.bind.dialect.name == "postgresql":
            calls = ", ".join(f"pg_notify(:c{i}, :origin)" for i in range(len(channels)))
            params = {f"c{i}": c for i, c in enumerate(channels)} | {"origin": waker.origin}
            session.execute(text(f"SELECT {calls}"), params)

    @event.listens_for(WakingSession, "after_commit")
    def _wake(session: Session) -> None:
        for channel in session.info.pop("wake", ()):
            waker.wake(channel)

    @event.listens_for(WakingSession, "after_rollback")
    def _forget(session: Session) -> None:
        session.info.pop("wake", None)

    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=WakingSession)
