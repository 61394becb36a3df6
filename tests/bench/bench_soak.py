"""Soak: the bridge's memory with 10,000 open sessions, after warm-up and after a long run.

Seeds 10,000 customers with open agent sessions straight into PostgreSQL, starts the bridge
(``udesk-bridge run``, its own process), drives traffic in both directions for a while and
reads the process's resident set size (VmRSS) before and after.  The baseline is the RSS
of a bare Python process that imported the same libraries (what the interpreter alone costs).

    python -m tests.bench.bench_soak [--sessions 10000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from typing import Any

import asyncpg

from bridge.store.db import asyncpg_dsn
from tests.bench.common import machine, rig


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def baseline_rss() -> float:
    """A Python process that imported what the bridge imports, doing nothing."""
    code = (
        "import bridge.parts, bridge.app, sys;"
        "print(open('/proc/self/status').read().split('VmRSS:')[1].split()[0])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return int(out.stdout.strip()) / 1024


async def seed(database_url: str, sessions: int) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute(
            """
            INSERT INTO customers (telegram_user_id, chat_id, customer_token, udesk_customer_id,
                udesk_created, first_name, chat_type, profile, reachable, created_at, updated_at)
            SELECT 100000 + g, 100000 + g, 'tg-' || (100000 + g), g, true, 'Soak', 'private',
                '{}'::json, true, now(), now()
            FROM generate_series(1, $1) AS g
            """,
            sessions,
        )
        await conn.execute(
            """
            INSERT INTO im_sessions (customer_id, assign_type, state, im_sub_session_id,
                agent_id, agent_name, preview_disabled, created_at, updated_at)
            SELECT id, 'agent', 'agent', 5000000 + id, 1, 'Tom', false, now(), now()
            FROM customers
            """
        )
    finally:
        await conn.close()


async def main(sessions: int, seconds: float) -> dict[str, Any]:
    print(f"soak: {sessions} open sessions, {seconds:.0f} s of traffic ({machine()})")
    base = baseline_rss()
    async with rig(QUEUE_POLL_INTERVAL="5s") as r:
        await seed(r.database_url, sessions)
        assert r.bridge.proc is not None
        pid = r.bridge.proc.pid
        # Warm-up: some customers write, so every part of the bridge has run once.
        for c in range(50):
            r.telegram.inject_text({"id": 100000 + 1 + c, "first_name": "Soak"}, "warm-up")
        await asyncio.sleep(5)
        warm = rss_mb(pid)
        deadline = time.monotonic() + seconds
        sent = 0
        while time.monotonic() < deadline:
            for c in range(20):
                user = 100000 + 1 + (sent + c) % sessions
                r.telegram.inject_text({"id": user, "first_name": "Soak"}, f"soak {sent + c}")
            await asyncio.gather(
                *(
                    r.udesk.push(
                        {
                            "customer_token": f"tg-{100000 + 1 + (sent + c) % sessions}",
                            "assign_type": "agent",
                            "messages": [
                                {
                                    "type": "message",
                                    "message_id": f"soak-{sent + c}",
                                    "data": {"content": f"reply {sent + c}"},
                                }
                            ],
                        },
                        kind="agent",
                    )
                    for c in range(20)
                )
            )
            sent += 20
            await asyncio.sleep(1.0)
        await asyncio.sleep(5)
        after = rss_mb(pid)
    growth = after - warm
    print(
        f"  RSS after warm-up {warm:.0f} MB, after {sent} messages each way {after:.0f} MB "
        f"(growth {growth:+.0f} MB; target < 150 MB and flat)   baseline interpreter {base:.0f} MB"
    )
    return {"warm_mb": warm, "after_mb": after, "baseline_mb": base, "messages": sent}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10000)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    asyncio.run(main(args.sessions, args.seconds))
