"""Fixtures for hostile-input tests.

``world`` is the e2e world (both simulators + the real bridge).  ``push_app`` is only the
push endpoint (the real handler, the real database, no simulators): a fast way to send one
odd push and see the answer, with one known customer (``KNOWN_TOKEN``) in the database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bridge.core.model import UserInfo
from bridge.core.texts import Texts
from bridge.store import customers
from bridge.store.db import create_engine, session_factory
from bridge.udesk.push_route import push_handler
from bridge.web.errors import error_middleware
from bridge.web.server import MAX_BODY
from tests.e2e.conftest import PUSH_SECRET, world

__all__ = ["KNOWN_TOKEN", "PushApp", "push_app", "world"]

KNOWN_USER = 8201
KNOWN_TOKEN = customers.token_for(KNOWN_USER)


@dataclass
class PushApp:
    client: TestClient
    backend: str

    async def push(self, body: bytes) -> tuple[int, str]:
        async with self.client.post(f"/udesk/push/{PUSH_SECRET}", data=body) as response:
            return response.status, await response.text()


@pytest.fixture
async def push_app(database_url: str) -> AsyncIterator[PushApp]:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    async with sessions.begin() as s:
        await customers.upsert_from_user(
            s, UserInfo(user_id=KNOWN_USER, chat_id=KNOWN_USER, language_code="en")
        )
    texts = Texts()
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY)
    app.router.add_post("/udesk/push/{secret}", push_handler(sessions, lambda: texts, PUSH_SECRET))
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield PushApp(client, "sqlite" if database_url.startswith("sqlite") else "postgresql")
    finally:
        await client.close()
        await engine.dispose()
