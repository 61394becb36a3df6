"""Kill loop: two replicas under two-way traffic, ``kill -9`` at random moments, restarts.

Two ``udesk-bridge run`` processes (webhook mode, behind a round-robin proxy as behind
nginx) share one PostgreSQL database with the default ``QUEUE_LEASE`` (60 s).  Customers
write and agents reply all along.  Before each kill, Udesk is made to hang on the next
customer message, so the kill lands mid-send as in a real crash; the replica holding that
send is killed and restarted at once.  Per kill, the recovery time is from the kill to the
moment every record the dead process held is delivered (by the survivor or the restarted
process).  At the end: nothing lost, nothing twice in Udesk, at most one repeated Telegram
message per kill (Telegram has no idempotency key: a send done by Telegram but not yet
recorded is sent again).

    python -m tests.bench.bench_kill_loop [--kills 20] [--customers 12]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from bridge.store.db import asyncpg_dsn
from tests.bench.common import fresh_database, machine, percentile
from tests.cluster import open_cluster
from tests.faults.traffic import Traffic, collapse_adjacent, once_in_order_problems, talk_until

LEASE = "60s"
TABLES = ("telegram_updates", "outbound_messages", "inbound_messages")


async def _held_by(db: Any, pid: int) -> dict[str, list[int]]:
    """The records in flight in each queue whose worker is the process ``pid``."""
    held: dict[str, list[int]] = {}
    for table in TABLES:
        rows = await db.fetch(
            f"SELECT id FROM {table} WHERE status = 'doing' AND worker LIKE $1", f"%-{pid}-%"
        )
        if rows:
            held[table] = [r["id"] for r in rows]
    return held


async def _all_finished(db: Any, held: dict[str, list[int]]) -> bool:
    for table, ids in held.items():
        left = await db.fetchval(
            f"SELECT count(*) FROM {table} WHERE id = ANY($1::bigint[]) "
            "AND status IN ('todo', 'doing')",
            ids,
        )
        if left:
            return False
    return True


async def main(kills: int = 20, customers: int = 12, seed: int = 20261205) -> dict[str, Any]:
    rnd = random.Random(seed)
    with tempfile.TemporaryDirectory() as media:
        return await _loop(kills, customers, rnd, Path(media))


async def _loop(kills: int, customers: int, rnd: random.Random, media: Path) -> dict[str, Any]:
    recoveries: list[float] = []
    async with (
        fresh_database() as url,
        open_cluster(
            url,
            media,
            agent_capacity=100000,
            LOG_LEVEL="WARNING",
            QUEUE_LEASE=LEASE,
            UDESK_TIMEOUT="10s",
            TELEGRAM_RATE_LIMIT="unlimited",
            TELEGRAM_CHAT_RATE_LIMIT="unlimited",
        ) as cluster,
    ):
        udesk, telegram, bridges = cluster.udesk, cluster.telegram, cluster.bridges
        db = await asyncpg.connect(asyncpg_dsn(url))
        traffic = Traffic(udesk, telegram, customers, 9500)
        try:
            await traffic.connect()
            stop = asyncio.Event()
            talking = asyncio.create_task(talk_until(traffic, stop, rnd, gap=(0.05, 0.3)))
            for _ in range(kills):
                await asyncio.sleep(rnd.uniform(0.3, 1.5))
                # Udesk hangs on the next customer message: the kill lands mid-send.
                udesk.inject_fault("/im/messages", "latency", delay=15, count=1)
                sends = len(udesk.arrived)
                deadline = time.monotonic() + 10
                while len(udesk.arrived) == sends and time.monotonic() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                pids = {b.proc.pid: b for b in bridges if b.proc is not None}
                holders = [pid for pid in pids if await _held_by(db, pid)]
                victim = pids[rnd.choice(holders)] if holders else rnd.choice(bridges)
                assert victim.proc is not None
                pid = victim.proc.pid
                await victim.kill()
                killed = time.monotonic()
                held = await _held_by(db, pid)
                restart = asyncio.create_task(victim.start())
                while not await _all_finished(db, held):  # noqa: ASYNC110 (polls the database)
                    await asyncio.sleep(0.02)
                recoveries.append(time.monotonic() - killed)
                await restart
            stop.set()
            await talking
            await traffic.wait_arrived(timeout=90)
            await asyncio.sleep(2.0)  # anything sent twice shows by now
        finally:
            await db.close()
        lost_or_twice_udesk = sum(
            once_in_order_problems(traffic.in_udesk(c), c.wrote) is not None
            for c in traffic.customers
        )
        repeats, chat_problems = 0, 0
        for c in traffic.customers:
            collapsed, extra = collapse_adjacent(traffic.in_chat(c))
            repeats += len(extra)
            chat_problems += once_in_order_problems(collapsed, c.replies) is not None
        writes = sum(len(c.wrote) for c in traffic.customers)
        replies = sum(len(c.replies) for c in traffic.customers)
    result = {
        "kills": kills,
        "recovery_p50_s": percentile(recoveries, 50),
        "recovery_max_s": max(recoveries),
        "recoveries": recoveries,
        "writes": writes,
        "replies": replies,
        "udesk_problems": lost_or_twice_udesk,
        "chat_problems": chat_problems,
        "telegram_repeats": repeats,
    }
    print(
        f"kill -9 x{kills}, two replicas, QUEUE_LEASE={LEASE}: recovery p50 "
        f"{result['recovery_p50_s']:.2f} s, max {result['recovery_max_s']:.2f} s "
        f"(baseline: the lease, 60 s); {writes} customer messages, {replies} agent replies; "
        f"customers with a message lost or twice in Udesk: {lost_or_twice_udesk}, in Telegram "
        f"(repeats collapsed): {chat_problems}; repeated Telegram sends: {repeats} "
        f"(at most {kills} allowed)"
    )
    print("recovery per kill (s):", " ".join(f"{r:.2f}" for r in recoveries))
    return result


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--customers", type=int, default=12)
    args = parser.parse_args()
    print(machine())
    asyncio.run(main(args.kills, args.customers))


if __name__ == "__main__":
    _cli()
