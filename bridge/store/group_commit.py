"""Group commit: writes that arrive at the same moment share one transaction.

A Udesk push is acknowledged only once its records are committed.  Under load many pushes
arrive together; giving each its own transaction (checkout, BEGIN, statements, NOTIFY,
COMMIT) makes the round trips, not the work, the cost.  ``GroupCommit`` runs every write
waiting when the previous batch finished in one transaction, and each caller returns only
once that transaction committed, so an acknowledgement still means "stored".  If a batch
fails, each of its writes is tried again in a transaction of its own, so one bad write
gets its own precise error and never takes the others down with it.

Writes of one kind can go further and share a statement: ``run_together(runner, item)``
hands every such item of a batch to one ``runner(session, items)`` call (e.g. one UPDATE
for all the records a dispatcher finished at that moment); a round trip per write, not the
database's work, is what a busy batch costs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bridge import tasks
from bridge.logs import correlation_id
from bridge.store.db import single_statement_sessions

log = logging.getLogger("bridge.store.group_commit")

T = TypeVar("T")
Work = Callable[[AsyncSession], Awaitable[Any]]
Runner = Callable[[AsyncSession, list[Any]], Awaitable[list[Any]]]
FastRunner = Callable[[AsyncSession, list[Any]], Awaitable[list[Any] | None]]


class _AloneAgain(Exception):
    """The shared transaction failed: try this write in a transaction of its own."""


class _Waiting(Generic[T]):
    def __init__(
        self,
        work: Callable[[AsyncSession], Awaitable[T]],
        cid: str | None,
        runner: Runner | None = None,
        item: Any = None,
        first: FastRunner | None = None,
    ) -> None:
        self.work = work
        self.cid = cid
        self.runner = runner  # writes with the same runner share one call (run_together)
        self.item = item
        self.first = first  # the runner's fast path, tried first (GroupCommit.single)
        self.future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        # Marks an error seen even when the caller was cancelled and never reads it.
        self.future.add_done_callback(lambda f: f.cancelled() or f.exception())


def _steps(batch: list[_Waiting[Any]]) -> list[tuple[Runner | None, list[int]]]:
    """The batch's writes in order, those of one runner gathered at the first of them."""
    steps: list[tuple[Runner | None, list[int]]] = []
    # Keyed by the runner: bound methods are made anew on every access but compare (and
    # hash) equal when they are the same method of the same object.
    gathered: dict[Runner, list[int]] = {}
    for index, waiting in enumerate(batch):
        if waiting.runner is None:
            steps.append((None, [index]))
        elif waiting.runner in gathered:
            gathered[waiting.runner].append(index)
        else:
            gathered[waiting.runner] = [index]
            steps.append((waiting.runner, gathered[waiting.runner]))
    return steps


class GroupCommit:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, name: str) -> None:
        self.sessions = sessions
        # The fast paths of ``run_together`` (``first``) run in autocommit on PostgreSQL.
        self.single = single_statement_sessions(sessions)
        self.name = name
        self._waiting: list[_Waiting[Any]] = []
        self._writer: asyncio.Task[None] | None = None

    async def run(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """``work(session)`` inside a transaction that has committed when this returns."""
        return await self._join(_Waiting(work, correlation_id.get()))

    async def run_together(
        self, runner: Runner, item: Any, *, first: FastRunner | None = None
    ) -> Any:
        """``item`` written by ``runner(session, items)`` together with the batch's other
        items of the same runner, which returns one result per item, in order; committed
        when this returns.

        ``first``: a fast path for the common case, tried (in an autocommit session on
        PostgreSQL, ``store.db.single_statement_sessions``) when
        every write of a batch has the same one: ``first(session, items)`` writes them
        and returns their results, or writes nothing and returns None, and the batch goes
        the usual way.  A push batch of plain messages is written in autocommit this way,
        three statements instead of a transaction's five."""

        async def alone(session: AsyncSession) -> Any:
            return (await runner(session, [item]))[0]

        return await self._join(_Waiting(alone, correlation_id.get(), runner, item, first))

    async def _join(self, waiting: _Waiting[T]) -> T:
        work = waiting.work
        self._waiting.append(waiting)
        if self._writer is None or self._writer.done():
            self._writer = tasks.create(self._write(), name=f"group-commit:{self.name}")
        try:
            # Shielded: a caller that goes away must not cancel the others' transaction.
            return await asyncio.shield(waiting.future)
        except _AloneAgain:
            async with self.sessions.begin() as session:
                return await work(session)

    async def _write(self) -> None:
        while self._waiting:
            await asyncio.sleep(0)  # let the writes arriving right now join this batch
            batch, self._waiting = self._waiting, []
            try:
                if not await self._fast(batch):
                    await self._together(batch)
            except BaseException:  # cancelled (shutdown): nobody is left waiting forever
                for waiting in batch + self._waiting:
                    if not waiting.future.done():
                        waiting.future.set_exception(_AloneAgain())
                raise

    async def _together(self, batch: list[_Waiting[Any]]) -> None:
        """The batch in one transaction; each write's result to its caller."""
        results: list[Any] = [None] * len(batch)
        try:
            async with self.sessions.begin() as session:
                for runner, indices in _steps(batch):
                    if runner is not None:
                        outs = await runner(session, [batch[i].item for i in indices])
                        for i, out in zip(indices, outs, strict=True):
                            results[i] = out
                        continue
                    (index,) = indices
                    # Records written for a caller carry the caller's correlation id.
                    token = correlation_id.set(batch[index].cid)
                    try:
                        results[index] = await batch[index].work(session)
                    finally:
                        correlation_id.reset(token)
        except Exception as exc:
            for waiting in batch:
                if not waiting.future.done():
                    # Alone, the write's own outcome is the answer; together, each tries
                    # again alone.
                    waiting.future.set_exception(exc if len(batch) == 1 else _AloneAgain())
            return
        _resolve(batch, results)

    async def _fast(self, batch: list[_Waiting[Any]]) -> bool:
        """The batch written by its writes' shared fast path (``run_together(first=…)``);
        False when there is none or it declined or failed (the usual way then decides,
        and gives a failing write its own error)."""
        first = batch[0].first
        if first is None or any(w.first != first for w in batch):
            return False
        try:
            async with self.single.begin() as session:
                results = await first(session, [w.item for w in batch])
        except Exception as exc:
            log.debug("%s: fast path failed (%s)", self.name, type(exc).__name__)
            return False
        if results is None:
            return False
        _resolve(batch, results)
        return True


def _resolve(batch: list[_Waiting[Any]], results: list[Any]) -> None:
    """Each caller of a written batch gets its own result."""
    for waiting, result in zip(batch, results, strict=True):
        if not waiting.future.done():
            waiting.future.set_result(result)
