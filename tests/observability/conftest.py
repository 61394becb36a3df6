"""The real bridge between the simulators (as ``tests/e2e``), with settings of our choice,
and helpers to read ``/metrics`` and ``/readyz``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import (
    World,
    free_port,
    open_world,
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
WorldFactory = Callable[..., AbstractAsyncContextManager[World]]


def running_world(
    database_url: str, tmp_path: Path, *, start_bridge: bool = True, **settings: Any
) -> AbstractAsyncContextManager[World]:
    """Both simulators and a started ``BridgeApp``; ``settings`` override the e2e ones."""
    return open_world(database_url, tmp_path / "media", start_bridge=start_bridge, **settings)


@pytest.fixture
def make_world(database_url: str, tmp_path: Path) -> WorldFactory:
    def factory(**settings: Any) -> AbstractAsyncContextManager[World]:
        return running_world(database_url, tmp_path, **settings)

    return factory


@pytest.fixture
async def world(make_world: WorldFactory) -> AsyncIterator[World]:
    async with make_world() as w:
        yield w


async def get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.text(), response.headers.get("Content-Type", "")


async def readyz(world: World) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{world.bridge_url}/readyz") as r:
        return r.status, await r.json()


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


async def scrape(world: World) -> Samples:
    status, body, _ = await get(f"{world.bridge_url}/metrics")
    assert status == 200, body
    return parse(body)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value, 0 when absent (a counter not incremented yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def has(samples: Samples, name: str, **labels: str) -> bool:
    return (name, frozenset(labels.items())) in samples


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def wait_for_metrics(world: World, check: Callable[[Samples], bool], what: str) -> Samples:
    async def probe() -> Samples | None:
        samples = await scrape(world)
        return samples if check(samples) else None

    found: Samples = await world.eventually(probe, what=what)
    return found


DB_PASSWORD = "db-password-secret"


@pytest.fixture
async def black_hole_db() -> AsyncIterator[str]:
    """A PostgreSQL URL whose "server" accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"postgresql+asyncpg://bridge:{DB_PASSWORD}@127.0.0.1:{port}/bridge"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.fixture
def closed_port_db() -> str:
    """A PostgreSQL URL where nothing listens."""
    return f"postgresql+asyncpg://bridge:{DB_PASSWORD}@127.0.0.1:{free_port()}/bridge"
