"""Fixtures for the privacy tests: the e2e ``world`` and a variant with the admin API and
/forget on (and the background purge off, so the tests decide when to purge)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    World,
    open_world,
    world,  # noqa: F401  (the e2e fixture, used here as is)
)

ADMIN_TOKEN = "admin-token-for-the-privacy-tests"


@pytest.fixture
async def pworld(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(
        database_url,
        tmp_path / "media",
        admin_token=ADMIN_TOKEN,
        forget_command=True,
        purge_interval=0,
    ) as w:
        yield w
