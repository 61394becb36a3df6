"""Fixtures of the fault matrix (see tests.faults.rigs)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.faults.rigs import Rig, Sims, open_rig, open_sims


@pytest.fixture
async def rig(pg_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    async with open_rig(pg_url, tmp_path / "media") as r:
        yield r


@pytest.fixture
async def sims() -> AsyncIterator[Sims]:
    async with open_sims() as s:
        yield s
