"""Shared fixtures: real PostgreSQL and SQLite databases, migrated to head.

PostgreSQL is found at TEST_DATABASE_URL or 127.0.0.1:5432 (``make test`` starts it if it
is down).  Each test run migrates one template database once; every test that asks for a
database gets a fresh copy of it (CREATE DATABASE … TEMPLATE, a few milliseconds).  With
CI=true an unreachable PostgreSQL fails the run instead of skipping.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.store import migrate
from bridge.store.db import asyncpg_dsn, create_engine

os.environ.setdefault("PTB_TIMEDELTA", "1")  # the same as bridge.telegram sets for the daemon

ADMIN_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
RUN_ID = uuid.uuid4().hex[:8]
TEMPLATE = f"bridge_tmpl_{RUN_ID}"


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _run(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, even inside a running event loop
    (a fixture requested with getfixturevalue from an async test)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(ADMIN_URL), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database on the test PostgreSQL server."""
    try:
        _run(_admin(f'CREATE DATABASE "{TEMPLATE}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        message = f"PostgreSQL not reachable at {make_url(ADMIN_URL).host}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: PostgreSQL is required)")
        pytest.skip(message)
    _run(asyncio.to_thread(migrate.upgrade, _with_database(ADMIN_URL, TEMPLATE)))
    yield TEMPLATE
    _run(_admin(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    name = f"bridge_t_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    _run(_admin(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    yield _with_database(ADMIN_URL, name)
    _run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    target = tmp_path / "bridge.db"
    target.write_bytes(sqlite_template.read_bytes())
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh, migrated database; every test using it runs on both backends."""
    name = "pg_url" if request.param == "postgresql" else "sqlite_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def telegram_sim() -> AsyncIterator[Any]:
    """The Telegram Bot API simulator on a local port (token ``123456:TEST-token``)."""
    from aiohttp.test_utils import TestServer

    from bridge.sandbox.telegram_sim import TelegramSimulator

    simulator = TelegramSimulator(bot_token="123456:TEST-token", bot_username="udesk_test_bot")
    server = TestServer(simulator.app, host="127.0.0.1")
    await server.start_server()
    simulator.base_url = str(server.make_url("")).rstrip("/")
    yield simulator
    await server.close()
