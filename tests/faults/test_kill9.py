"""``udesk-bridge run`` killed with SIGKILL at random points (seeded) while customers write
and agents reply, restarted, five times over.

Udesk side: exactly once, in order (a send repeated after a kill carries the same
message_id, which Udesk takes once).  Telegram side: Telegram has no idempotency key, so a
send in flight at the kill (done by Telegram, not yet recorded as done) is sent again by the
next process: nothing may be lost, the order must hold, and any repeat must sit right next
to its original with a kill between the two; the repeats are counted and printed.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path

import aiohttp
import pytest

from tests.faults.rigs import Sims
from tests.faults.traffic import (
    Traffic,
    assert_once_in_order,
    collapse_adjacent,
    talk_until,
)
from tests.processes import BridgeProcess, bridge_env

SEED = int(os.environ.get("FAULT_SEED", "20240607"))  # another seed: FAULT_SEED=n
KILLS = 5


async def _start(bridge: BridgeProcess, url: str) -> None:
    """BridgeProcess.start, tolerating a connection reset while it polls /healthz."""
    try:
        await bridge.start()
        return
    except OSError:
        pass
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                async with http.get(f"{url}/healthz") as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("bridge did not start")


def _repeats(traffic: Traffic, kills: list[float]) -> tuple[int, list[str]]:
    """Check the chats leniently; returns (repeated sends, problems)."""
    problems: list[str] = []
    repeats = 0
    for c in traffic.customers:
        sent = [m for m in traffic.telegram.sent(c.chat) if (m.text or "").startswith("a")]
        texts = [m.text or "" for m in sent]
        collapsed, extra = collapse_adjacent(texts)
        try:
            assert_once_in_order(collapsed, c.replies, f"chat {c.chat} (repeats collapsed)")
        except AssertionError as exc:
            problems.append(str(exc))
        for index in extra:
            first, again = sent[index - 1], sent[index]
            if not any(first.sent_at <= k <= again.sent_at for k in kills):
                problems.append(f"chat {c.chat}: {again.text!r} repeated with no kill between")
        repeats += len(extra)
    return repeats, problems


@pytest.mark.timeout(150)
async def test_kill_9_at_random_points_five_times(sims: Sims, pg_url: str, tmp_path: Path) -> None:
    rnd = random.Random(SEED)
    udesk, telegram = sims.udesk, sims.telegram
    env = bridge_env(
        pg_url,
        tmp_path / "media",
        sims.bridge_port,
        sims.udesk_port,
        sims.telegram_root,
        QUEUE_LEASE="2s",
        UDESK_TIMEOUT="1s",
        TELEGRAM_RATE_LIMIT="unlimited",
        TELEGRAM_CHAT_RATE_LIMIT="unlimited",
    )
    bridge = BridgeProcess(env, sims.bridge_port, log=tmp_path / "bridge.log")
    traffic = Traffic(udesk, telegram, 4, 9100)
    kills: list[float] = []
    try:
        await _start(bridge, sims.bridge_url)
        await traffic.connect()
        for _ in range(KILLS):
            # Replies missed while the bridge was down reach the chat through the catch-up
            # at start; the agents go on once they have (so the order is the agents').
            await traffic.wait_arrived(timeout=30)
            stop = asyncio.Event()
            talking = asyncio.create_task(talk_until(traffic, stop, rnd))
            await asyncio.sleep(rnd.uniform(0.3, 1.5))
            await bridge.kill()
            # Stamped once the process is gone: a send it made in its last milliseconds is
            # then before the stamp, as it should be for the repeat check.
            kills.append(time.time())
            await asyncio.sleep(rnd.uniform(0.0, 0.3))  # pushes during this fail
            stop.set()
            await talking
            for c in traffic.customers:  # the customers keep writing while it is down
                traffic.write(c)
            await _start(bridge, sims.bridge_url)
        await traffic.wait_arrived(timeout=40)
        await traffic.burst(writes=1, replies=1)
        await traffic.wait_arrived(timeout=30)
        await asyncio.sleep(1.5)  # anything sent twice shows by now
    finally:
        await bridge.stop()

    for c in traffic.customers:
        assert_once_in_order(traffic.in_udesk(c), c.wrote, f"Udesk, customer {c.uid}")
    repeats, problems = _repeats(traffic, kills)
    replies = sum(len(c.replies) for c in traffic.customers)
    writes = sum(len(c.wrote) for c in traffic.customers)
    print(
        f"\nkill -9 x{KILLS} (seed {SEED}): {writes} customer messages once in Udesk "
        f"({len(udesk.duplicate_messages)} repeated sends absorbed by message_id); "
        f"{replies} agent replies, {repeats} sent twice to Telegram at a kill"
    )
    if udesk.errors:  # the simulator's own failures (e.g. a push worker hit by a reset)
        print("udesk simulator errors:", udesk.errors)
    assert not problems, "\n".join(problems)
