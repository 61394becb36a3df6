"""A Telegram send still in flight when its lease could not be renewed (the database was
unreachable for longer than QUEUE_LEASE) must not be sent a second time by the same
process.

The real sequence (seen in test_postgres_restart with a send held in flight across the
outage): the send succeeds while PostgreSQL is down, ``Dispatcher._record`` keeps retrying
the outcome with backoff, the lease renewals fail, and when the database is back the same
process's ``recover_expired`` (run on its next claim) puts the record back in line and
claims it again before ``_record`` or the renewal gets through: the reply is sent twice.
Here the database outage is narrowed to the one thing it does to this record (its lease
renewals fail), which makes the sequence deterministic.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.exc import OperationalError

from tests.faults.rigs import Rig, open_rig
from tests.faults.traffic import Traffic, assert_once_in_order


async def test_send_in_flight_when_lease_renewal_fails_is_not_repeated(
    pg_url: str, tmp_path: Path
) -> None:
    async with open_rig(pg_url, tmp_path / "media", queue_lease=1) as rig:
        await _scenario(rig)


async def _scenario(rig: Rig) -> None:
    traffic = Traffic(rig.udesk, rig.telegram, 1, 8900)
    await traffic.connect()
    await traffic.burst(writes=1, replies=1)
    await traffic.wait_arrived()
    (customer,) = traffic.customers
    assert rig.bridge.parts is not None
    inbound = rig.bridge.parts.queues["inbound"]

    async def unreachable(record_ids: list[int]) -> None:
        raise OperationalError("UPDATE inbound_messages …", {}, ConnectionRefusedError())

    inbound.extend_leases = unreachable  # type: ignore[method-assign]
    # The send takes longer than the 1 s lease (and less than PTB's 5 s read timeout, so
    # the bridge itself never gives up on it).
    rig.telegram.inject_fault(method="sendMessage", kind="latency", count=1, delay=4.0)
    await traffic.reply(customer)
    await traffic.wait_arrived(timeout=20)
    await asyncio.sleep(4.5)  # the slow first send lands by now
    assert_once_in_order(traffic.in_chat(customer), customer.replies, f"chat {customer.chat}")
