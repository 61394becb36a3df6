"""Migrations run forward to head and back to an empty database on both backends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import inspect, text

from bridge.store import migrate
from bridge.store.db import create_engine
from bridge.store.tables import Base


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_upgrade_to_head_and_back(backend: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("pg_url" if backend == "postgresql" else "sqlite_url")
    # The fixture copy is already at head: go down to nothing, then up again.
    migrate.downgrade(url, "base")
    assert asyncio.run(_tables(url)) <= {"alembic_version"}
    migrate.upgrade(url, "head")
    assert set(Base.metadata.tables) <= asyncio.run(_tables(url))
    migrate.upgrade(url, "head")  # idempotent: a second start migrates nothing


async def _erasure_rows(url: str, statement: str) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(statement))
            return list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_completed_erasures_forget_the_person_on_upgrade(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """Rows completed before erasures cleared themselves keep nothing after migration 0004;
    a pending one keeps what its remaining steps need."""
    url = request.getfixturevalue("pg_url" if backend == "postgresql" else "sqlite_url")
    migrate.downgrade(url, "0003")
    insert = (
        "INSERT INTO erasures (id, telegram_user_id, customer_token, udesk_customer_id, "
        "chat_id, first_seen_at, udesk_open, media_files, steps, requested_by, created_at, "
        "updated_at, completed_at) VALUES "
        "(1, 8301, 'tg-8301', 5000001, 8301, '2026-01-01 00:00:00', "
        """'{"im_sub_session_id": 7}', '["/media/ab/abc"]', '{}', 'cli', """
        "'2026-01-02 00:00:00', '2026-01-02 00:00:00', '2026-01-02 00:00:00'), "
        "(2, 8302, 'tg-8302', 5000002, 8302, '2026-01-01 00:00:00', NULL, '[]', '{}', 'cli', "
        "'2026-01-02 00:00:00', '2026-01-02 00:00:00', NULL)"
    )
    asyncio.run(_erasure_rows(url, insert))
    migrate.upgrade(url, "head")
    rows = asyncio.run(
        _erasure_rows(
            url,
            "SELECT id, telegram_user_id, customer_token, udesk_customer_id, chat_id, "
            "first_seen_at, udesk_open, media_files, completed_at IS NOT NULL "
            "FROM erasures ORDER BY id",
        )
    )
    completed, pending = rows
    assert tuple(completed)[:7] == (1, 8301, "", None, None, None, None)
    assert completed[7] in ([], "[]") and completed[8]  # JSON as parsed (PG) or text (SQLite)
    assert tuple(pending)[:5] == (2, 8302, "tg-8302", 5000002, 8302)
    assert pending[5] is not None
