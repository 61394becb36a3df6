"""Bodies over 1 MiB are refused with 413 on every endpoint that takes a body, whether the
client announces the length or streams it chunked; the server keeps answering."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp

from tests.e2e.conftest import PUSH_SECRET, World
from tests.security.conftest import WEBHOOK_SECRET
from tests.security.test_endpoint_secrets import has_route

MIB = 1024 * 1024


async def chunked(total: int) -> AsyncIterator[bytes]:
    piece = b'{"a":"' + b"x" * (64 * 1024)
    sent = 0
    while sent < total:
        yield piece
        sent += len(piece)


async def post(world: World, path: str, body: object, headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as http:
        try:
            async with http.post(world.bridge_url + path, data=body, headers=headers) as response:
                return response.status
        except aiohttp.ClientOSError:
            return -1  # the server closed the connection mid-upload: acceptable, not a 200


async def test_oversized_bodies_get_413(hardened: World) -> None:
    webhook = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
    targets = [
        (f"/udesk/push/{PUSH_SECRET}", {}),
        (f"/udesk/customer-token/{PUSH_SECRET}", {}),
        (f"/udesk/field-push/{PUSH_SECRET}", {}),
        ("/telegram/webhook", webhook),
    ]
    for path, headers in targets:
        if not has_route(hardened, path.replace(PUSH_SECRET, "{secret}")):
            continue  # not there yet (identity endpoints)
        exact = b"{" + b" " * (MIB - 2) + b"}"  # exactly 1 MiB is still fine
        status = await post(hardened, path, exact, headers)
        assert status not in (413, -1), (path, status)
        for size in (MIB + 1, 8 * MIB):
            status = await post(hardened, path, b"x" * size, headers)
            assert status == 413 or (status == -1 and size > MIB + 1), (path, size, status)
        status = await post(hardened, path, chunked(3 * MIB), headers)
        assert status in (413, -1), (path, "chunked", status)
    async with aiohttp.ClientSession() as http, http.get(f"{hardened.bridge_url}/healthz") as r:
        assert r.status == 200
    # Push and webhook must be 413 in particular (the contract names them).
    assert await post(hardened, f"/udesk/push/{PUSH_SECRET}", b"x" * (MIB + 1), {}) == 413
    assert await post(hardened, "/telegram/webhook", b"x" * (MIB + 1), webhook) == 413
