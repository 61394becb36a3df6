"""Call-center lookup latency (``POST /udesk/customer-token/{secret}``), beside a bare baseline.

A fresh PostgreSQL database gets 10,000 customers with phone numbers; the real bridge
(``BridgeApp``, the ``run`` code path, with both simulators) runs in this process; N lookups
of random known numbers, spelled as a call center would (``139…`` without country code), are
fired over HTTP at a fixed concurrency.  The baseline is a bare aiohttp handler doing the
same work with nothing around it: parse the JSON, the same phone normalisation, the same
single indexed SELECT, with asyncpg.  Udesk wants the answer within 500 ms; the target is a
p99 well under 20 ms.

    python -m tests.bench.bench_callcenter [--customers 10000] [--requests 3000]
                                           [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web
from sqlalchemy import insert

from bridge.app import BridgeApp
from bridge.core import phones
from bridge.sandbox.telegram_sim import TelegramSimulator
from bridge.store.db import asyncpg_dsn, create_engine
from bridge.store.tables import Customer
from tests.bench.common import fresh_database, machine, serve, summary
from tests.e2e.conftest import BOT_TOKEN, PUSH_SECRET, bridge_settings, free_port, start_udesk

QUERY = (
    "SELECT phone, customer_token FROM customers WHERE phone = ANY($1::varchar[]) "
    "ORDER BY updated_at DESC LIMIT 10"
)


def national(i: int) -> str:
    return f"139{i:08d}"


async def seed(url: str, count: int) -> None:
    """``count`` customers who shared +86139xxxxxxxx, in batches (Python-side defaults)."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            for start in range(0, count, 2000):
                rows = [
                    {
                        "telegram_user_id": 100_000 + i,
                        "chat_id": 100_000 + i,
                        "customer_token": f"tg-{100_000 + i}",
                        "first_name": f"C{i}",
                        "phone": f"+86{national(i)}",
                        "profile": {},
                    }
                    for i in range(start, min(start + 2000, count))
                ]
                await conn.execute(insert(Customer), rows)
    finally:
        await engine.dispose()
    admin = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await admin.execute("ANALYZE customers")
    finally:
        await admin.close()


async def fire(url: str, count: int, requests: int, concurrency: int) -> tuple[list[float], float]:
    """``requests`` lookups at ``concurrency`` in flight; each answer is checked."""
    rng = random.Random(7)
    picks = [rng.randrange(count) for _ in range(requests)]
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in picks:
        queue.put_nowait(i)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                body = {"timestamp": int(time.time()), "number": national(i)}
                started = time.perf_counter()
                async with http.post(url, json=body) as response:
                    answer = await response.json()
                latencies.append(time.perf_counter() - started)
                if response.status != 200 or answer != {"customer_token": f"tg-{100_000 + i}"}:
                    raise AssertionError(f"wrong answer {response.status} {answer} for {i}")

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - began


async def bench_bridge(
    db: str, count: int, requests: int, concurrency: int
) -> tuple[list[float], float]:
    bridge_port, udesk_port = free_port(), free_port()
    bridge_url = f"http://127.0.0.1:{bridge_port}"
    _udesk, udesk_runner = await start_udesk(udesk_port, f"{bridge_url}/udesk/push/{PUSH_SECRET}")
    telegram = TelegramSimulator(bot_token=BOT_TOKEN)
    tg_root = await telegram.start()
    with tempfile.TemporaryDirectory() as media:
        settings = bridge_settings(
            db, Path(media), bridge_port, udesk_port, tg_root, log_level="WARNING"
        )
        bridge = BridgeApp(settings, run_migrations=False)
        await bridge.start()
        try:
            url = f"{bridge_url}/udesk/customer-token/{PUSH_SECRET}"
            await fire(url, count, min(200, requests), concurrency)  # warm-up
            return await fire(url, count, requests, concurrency)
        finally:
            await bridge.stop()
            await telegram.stop()
            await udesk_runner.cleanup()


async def bench_baseline(
    db: str, count: int, requests: int, concurrency: int
) -> tuple[list[float], float]:
    pool = await asyncpg.create_pool(asyncpg_dsn(db), min_size=2, max_size=10)

    async def lookup(request: web.Request) -> web.Response:
        data = json.loads(await request.read())
        keys = phones.lookup_keys(data["number"], "CN")
        rows = await pool.fetch(QUERY, keys)
        if not rows:
            return web.json_response({"error": "not_found"}, status=404)
        return web.json_response({"customer_token": rows[0]["customer_token"]})

    app = web.Application()
    app.router.add_post("/lookup", lookup)
    runner, port = await serve(app)
    try:
        url = f"http://127.0.0.1:{port}/lookup"
        await fire(url, count, min(200, requests), concurrency)  # warm-up
        return await fire(url, count, requests, concurrency)
    finally:
        await runner.cleanup()
        await pool.close()


def report(name: str, latencies: list[float], elapsed: float) -> dict[str, Any]:
    figures = {"name": name, "per_s": len(latencies) / elapsed, **summary(latencies)}
    print(
        f"  {name:<10} p50 {figures['p50_ms']:6.2f} ms   p99 {figures['p99_ms']:6.2f} ms   "
        f"{figures['per_s']:7.0f} lookups/s"
    )
    return figures


async def main(
    customers: int = 10_000, requests: int = 3000, concurrency: int = 8
) -> dict[str, Any]:
    print(
        f"call-center lookup: {customers} customers, {requests} lookups, "
        f"{concurrency} in flight ({machine()})"
    )
    async with fresh_database() as db:
        await seed(db, customers)
        bridge = report("bridge", *await bench_bridge(db, customers, requests, concurrency))
        baseline = report("baseline", *await bench_baseline(db, customers, requests, concurrency))
    ratio = bridge["p99_ms"] / baseline["p99_ms"]
    verdict = "met" if bridge["p99_ms"] < 20 else "NOT met"
    print(
        f"  ratio bridge/baseline p50 {bridge['p50_ms'] / baseline['p50_ms']:.2f}, "
        f"p99 {ratio:.2f}   (target: bridge p99 < 20 ms: {verdict})"
    )
    return {"bridge": bridge, "baseline": baseline, "ratio": ratio}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.customers, args.requests, args.concurrency))
