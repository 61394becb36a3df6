"""A person with something of everything, and ways to look at the bridge's database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bridge.privacy import records
from bridge.privacy.tables import Erasure
from bridge.store.tables import Media
from bridge.udesk.budget import RateBudget
from bridge.udesk.client import UdeskClient
from bridge.udesk.gateway import UdeskGateway
from tests.e2e.conftest import UDESK_EMAIL, UDESK_TOKEN, World

USER = {"id": 8301, "first_name": "Mei", "last_name": "Lin", "language_code": "en"}
UID = 8301
TOKEN = f"tg-{UID}"
QUESTION = "my secret question about order 4471"
ANSWER = "agent answer for order 4471"
PHOTO_CAPTION = "photo of the broken part"


def sessions_of(world: World) -> async_sessionmaker[AsyncSession]:
    assert world.bridge.parts is not None
    return world.bridge.parts.sessions


async def settle(world: World) -> None:
    """Wait until no record of any queue is waiting or in flight."""

    async def idle() -> bool:
        async with sessions_of(world)() as s:
            from bridge.store.tables import InboundMessage, OutboundMessage, TelegramUpdate

            for table in (TelegramUpdate, OutboundMessage, InboundMessage):
                busy = await s.scalar(
                    select(func.count())
                    .select_from(table)
                    .where(table.status.in_(("todo", "doing")))
                )
                if busy:
                    return False
        return True

    await world.eventually(idle, what="queues idle")


async def converse(world: World) -> None:
    """The person writes, gets an agent, an answer, and sends a photo (a media file)."""
    world.telegram.inject_text(USER, QUESTION)
    await world.eventually(lambda: world.udesk.messages_for(TOKEN), what="first message")
    await world.udesk.drain()
    await world.udesk.agent_reply(TOKEN, ANSWER)
    await world.eventually(lambda: ANSWER in world.texts_to(UID), what="agent answer")
    world.telegram.inject_photo(USER, caption=PHOTO_CAPTION)
    await world.eventually(
        lambda: any(m.type == "image" for m in world.udesk.messages_for(TOKEN)), what="photo"
    )
    await settle(world)


async def person_counts(world: World) -> dict[str, int]:
    async with sessions_of(world)() as s:
        person, _ = await records.find_person(s, UID)
        return await records.counts(s, person)


async def media_files(world: World) -> list[Path]:
    async with sessions_of(world)() as s:
        return [Path(p) for p in (await s.scalars(select(Media.path))).all()]


async def erasures(world: World) -> list[Erasure]:
    async with sessions_of(world)() as s:
        return list((await s.scalars(select(Erasure).order_by(Erasure.id))).all())


@asynccontextmanager
async def udesk_gateway(world: World, attempts: int = 1) -> AsyncIterator[UdeskGateway]:
    """A gateway of our own on the simulator: no retries, so a fault stops a step at once."""
    async with aiohttp.ClientSession() as http:
        client = UdeskClient(
            f"{world.udesk_url}/open_api_v1",
            UDESK_EMAIL,
            UDESK_TOKEN,
            session=http,
            budget=RateBudget(None, 60.0),
            max_attempts=attempts,
            backoff_base=0.01,
        )
        yield UdeskGateway(client)


async def pause(seconds: float = 0.5) -> None:
    await asyncio.sleep(seconds)
