"""Migrations run forward to head and back to an empty database on both backends."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import inspect

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
