"""Customer → agent throughput and latency, beside a bare relay baseline.

N simulated users each send M text messages, each user waiting for their previous message
to reach Udesk before sending the next (per-user order, like a person typing fast).  The
bridge path: Telegram simulator → getUpdates → stored update → outbound record → signed
POST /im/messages → Udesk simulator.  The baseline: a bare aiohttp relay doing one INSERT
and one signed HTTP call per message, driven the same way.  Rate limits are off.

    python -m tests.bench.bench_customer_to_agent [--users 100] [--messages 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from bridge.store.db import asyncpg_dsn
from bridge.udesk.signing import signed_params
from tests.bench.common import fresh_database, machine, median_figures, rig, serve, summary
from tests.e2e.conftest import UDESK_EMAIL, UDESK_TOKEN, start_udesk

Injector = Callable[[int, str], Awaitable[None] | None]

# Messages per user sent before the clock starts, by the bridge and the baseline alike: both
# are measured as a long-running process runs, connections open and statements prepared
# (a pooled connection prepares each statement on its first use).
WARM_UP = 3


class Arrivals:
    """Watches the Udesk simulator's received messages and wakes whoever waits for one."""

    def __init__(self, messages: list[Any]) -> None:
        self.messages = messages
        self.seen = 0
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self.task: asyncio.Task[None] | None = None

    def expect(self, text: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[text] = future
        return future

    async def run(self) -> None:
        while True:
            while self.seen < len(self.messages):
                message = self.messages[self.seen]
                self.seen += 1
                future = self.waiting.pop(str(message.data.get("content")), None)
                if future is not None and not future.done():
                    future.set_result(time.perf_counter())
            await asyncio.sleep(0.001)


async def drive(
    inject: Injector, arrivals: Arrivals, users: int, messages: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []

    async def user(uid: int) -> None:
        for i in range(messages):
            text = f"u{uid}-m{i}"
            arrived = arrivals.expect(text)
            sent = time.perf_counter()
            result = inject(uid, text)
            if result is not None:
                await result
            latencies.append(await asyncio.wait_for(arrived, 60) - sent)

    started = time.perf_counter()
    await asyncio.gather(*(user(10_000 + u) for u in range(users)))
    return time.perf_counter() - started, latencies


async def bench_bridge(users: int, messages: int) -> dict[str, Any]:
    async with rig() as r:
        arrivals = Arrivals(r.udesk.customer_messages)
        arrivals.task = asyncio.create_task(arrivals.run())

        def inject(uid: int, text: str) -> None:
            r.telegram.inject_text({"id": uid, "first_name": f"U{uid}"}, text)

        await drive(inject, arrivals, users, WARM_UP)  # customers and sessions exist
        elapsed, latencies = await drive(inject, arrivals, users, messages)
        arrivals.task.cancel()
        duplicates = len(r.udesk.duplicate_messages)
    return {"elapsed": elapsed, "latencies": latencies, "duplicates": duplicates}


async def bench_baseline(users: int, messages: int) -> dict[str, Any]:
    """One INSERT and one signed HTTP call per message, nothing else."""
    async with fresh_database() as url:
        udesk_port = _port()
        udesk, udesk_runner = await start_udesk(udesk_port, "http://127.0.0.1:9/unused")
        udesk.set_agent(1, "Tom", capacity=100000)
        pool = await asyncpg.create_pool(asyncpg_dsn(url), min_size=4, max_size=10)
        await pool.execute("CREATE TABLE relay (id bigserial primary key, body jsonb)")
        http = aiohttp.ClientSession()
        api = f"http://127.0.0.1:{udesk_port}/open_api_v1"
        sessions: dict[int, int] = {}

        async def signed_post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            params = signed_params(UDESK_EMAIL, UDESK_TOKEN)
            async with http.post(f"{api}{path}", params=params, json=body) as response:
                return dict(await response.json())

        async def relay(request: web.Request) -> web.Response:
            body = await request.json()
            await pool.execute("INSERT INTO relay (body) VALUES ($1)", json.dumps(body))
            await signed_post(
                "/im/messages",
                {
                    "customer_token": f"tg-{body['uid']}",
                    "im_sub_session_id": sessions[body["uid"]],
                    "message_id": f"m{body['uid']}_{body['n']}",
                    "type": "message",
                    "data": {"content": body["text"]},
                },
            )
            return web.Response()

        app = web.Application()
        app.router.add_post("/relay", relay)
        runner, port = await serve(app)
        for u in range(users):
            uid = 10_000 + u
            await signed_post(
                "/customers", {"customer": {"nick_name": "x", "open_api_token": f"tg-{uid}"}}
            )
            opened = await signed_post(
                "/im/sessions", {"customer_token": f"tg-{uid}", "assign_type": "agent"}
            )
            sessions[uid] = opened["assign_info"]["im_sub_session_id"]
        arrivals = Arrivals(udesk.customer_messages)
        arrivals.task = asyncio.create_task(arrivals.run())
        counter = iter(range(10**9))

        async def inject(uid: int, text: str) -> None:
            body = {"uid": uid, "text": text, "n": next(counter)}
            async with http.post(f"http://127.0.0.1:{port}/relay", json=body) as response:
                await response.read()

        await drive(inject, arrivals, users, WARM_UP)  # as the bridge's
        elapsed, latencies = await drive(inject, arrivals, users, messages)
        arrivals.task.cancel()
        await runner.cleanup()
        await http.close()
        await pool.close()
        await udesk_runner.cleanup()
    return {"elapsed": elapsed, "latencies": latencies, "duplicates": 0}


QUOTA = "40/2s"  # UDESK_RATE_LIMIT for quota_run: 40 calls in any 2 s


async def quota_run(users: int, messages: int) -> dict[str, Any]:
    """``UDESK_RATE_LIMIT`` on: the busiest window of Udesk calls must stay within it while
    more messages wait than it allows."""
    calls, seconds = 40, 2.0
    async with rig(UDESK_RATE_LIMIT=QUOTA) as r:
        arrivals = Arrivals(r.udesk.customer_messages)
        arrivals.task = asyncio.create_task(arrivals.run())

        def inject(uid: int, text: str) -> None:
            r.telegram.inject_text({"id": uid, "first_name": f"U{uid}"}, text)

        elapsed, _ = await drive(inject, arrivals, users, messages)
        arrivals.task.cancel()
        times = sorted(c.time for c in r.udesk.calls)
    busiest, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= seconds:
            start += 1
        busiest = max(busiest, end - start + 1)
    return {
        "limit": QUOTA,
        "allowed": calls,
        "busiest": busiest,
        "udesk_calls": len(times),
        "calls_per_s": len(times) / elapsed,
    }


def _port() -> int:
    from tests.e2e.conftest import free_port

    return free_port()


def report(name: str, result: dict[str, Any], count: int) -> dict[str, Any]:
    rate = count / result["elapsed"]
    figures = {"name": name, "messages_per_s": rate, **summary(result["latencies"])}
    figures["duplicates"] = result["duplicates"]
    print(
        f"  {name:<10} {rate:8.0f} msg/s   p50 {figures['p50_ms']:6.1f} ms   "
        f"p99 {figures['p99_ms']:6.1f} ms   duplicates {figures['duplicates']}"
    )
    return figures


async def main(users: int, messages: int, runs: int = 1) -> dict[str, Any]:
    print(f"customer → agent: {users} users × {messages} messages ({machine()}), {runs} run(s)")
    count = users * messages
    bridge = median_figures(
        [report("bridge", await bench_bridge(users, messages), count) for _ in range(runs)]
    )
    baseline = median_figures(
        [report("baseline", await bench_baseline(users, messages), count) for _ in range(runs)]
    )
    if runs > 1:
        for name, figures in (("bridge", bridge), ("baseline", baseline)):
            print(
                f"  median {name:<10} {figures['messages_per_s']:6.0f} msg/s   "
                f"p50 {figures['p50_ms']:6.1f} ms   p99 {figures['p99_ms']:6.1f} ms"
            )
    ratio = bridge["messages_per_s"] / baseline["messages_per_s"]
    print(f"  ratio bridge/baseline: {ratio:.2f} (target ≥ 0.5; bridge target ≥ 500 msg/s)")
    quota = await quota_run(30, 3)
    print(
        f"  UDESK_RATE_LIMIT={quota['limit']}: {quota['udesk_calls']} Udesk calls at "
        f"{quota['calls_per_s']:.1f}/s, busiest 2 s window {quota['busiest']} "
        f"(never above {quota['allowed']})"
    )
    return {"bridge": bridge, "baseline": baseline, "ratio": ratio, "quota": quota}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--runs", type=int, default=1, help="report the median of this many")
    args = parser.parse_args()
    asyncio.run(main(args.users, args.messages, args.runs))
