"""Bad input never gets a traceback: bytes that are no UTF-8 in a secret header, JSON nested
absurdly deep, a body that is not in the encoding its headers name.  Each gets a 4xx in the
one error shape, and the log has no ERROR line and no traceback for it."""

from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.e2e.conftest import PUSH_SECRET, World
from tests.security.conftest import ADMIN_TOKEN, WEBHOOK_SECRET
from tests.security.test_endpoint_secrets import rejected_count

MIB = 1024 * 1024
WEBHOOK_HEADER = b"X-Telegram-Bot-Api-Secret-Token"


async def raw_request(
    world: World, method: str, path: bytes, headers: list[bytes], body: bytes = b""
) -> tuple[int, bytes]:
    """Send bytes as they are (aiohttp's client would refuse them): the status and body."""
    address = urlsplit(world.bridge_url)
    assert address.hostname is not None and address.port is not None
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        head = [method.encode() + b" " + path + b" HTTP/1.1", b"Host: bridge", *headers]
        head += [b"Content-Length: " + str(len(body)).encode(), b"Connection: close"]
        writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def assert_no_error_logged(caplog: pytest.LogCaptureFixture) -> None:
    bad = [
        f"{r.levelname} {r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.ERROR or r.exc_info or r.exc_text
    ]
    assert not bad, bad


# Values no client should send, but anyone can: Latin-1, stray continuation bytes, an
# encoded surrogate, and the right secret spoiled by one such byte.
UNDECODABLE = [
    b"\xff\xfe",
    b"caf\xe9",
    b"\x80abc",
    b"\xed\xa0\x80",
    b"\xc3\xa9",
]


async def test_undecodable_authorization_gets_401(
    hardened: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    values = [b"Bearer " + v for v in UNDECODABLE] + list(UNDECODABLE)
    values += [b"Bearer " + ADMIN_TOKEN.encode() + b"\xff", b"B\xe9arer " + ADMIN_TOKEN.encode()]
    for path in (b"/admin/sessions", b"/admin/does-not-exist"):
        for value in values:
            status, body = await raw_request(hardened, "GET", path, [b"Authorization: " + value])
            assert status == 401, (path, value, status, body)
            assert json.loads(body)["error"] == "unauthorized"
    # The right token, sent as bytes the same way, still opens the door.
    right = b"Authorization: Bearer " + ADMIN_TOKEN.encode()
    assert (await raw_request(hardened, "GET", b"/admin/sessions", [right]))[0] == 200
    assert_no_error_logged(caplog)


async def test_undecodable_webhook_secret_gets_403(
    hardened: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    update = json.dumps({"update_id": 990001, "message": {"message_id": 1}}).encode()
    values = [*UNDECODABLE, WEBHOOK_SECRET.encode() + b"\xff", b"\xff" + WEBHOOK_SECRET.encode()]
    for value in values:
        status, body = await raw_request(
            hardened, "POST", b"/telegram/webhook", [WEBHOOK_HEADER + b": " + value], update
        )
        assert status == 403, (value, status, body)
        assert json.loads(body)["error"] == "forbidden"
    assert_no_error_logged(caplog)


async def test_malformed_requests_get_400_without_a_traceback(
    hardened: World, caplog: pytest.LogCaptureFixture
) -> None:
    """Control characters in a header or raw bytes in the path: aiohttp's parser refuses the
    request (400) before any handler; that is a stranger's mistake, not an error of ours."""
    caplog.set_level(logging.WARNING)
    token = ADMIN_TOKEN.encode()
    cases = [
        ("GET", b"/admin/sessions", [b"Authorization: Bearer \x01" + token]),
        ("GET", b"/admin/sessions", [b"Authorization: Bearer " + token + b"\x7f"]),
        ("POST", b"/telegram/webhook", [WEBHOOK_HEADER + b": \x00" + WEBHOOK_SECRET.encode()]),
        ("POST", b"/udesk/push/\xff" + PUSH_SECRET.encode(), []),
    ]
    for method, path, headers in cases:
        status, _ = await raw_request(hardened, method, path, headers)
        assert status == 400, (path, headers, status)
    assert_no_error_logged(caplog)
    async with aiohttp.ClientSession() as http, http.get(f"{hardened.bridge_url}/healthz") as r:
        assert r.status == 200


def nested(depth: int, leaf: str = "1") -> str:
    return '{"a":' * depth + leaf + "}" * depth


def deep_bodies(wrap: str) -> list[bytes]:
    """JSON nested deeper than anything Udesk or Telegram sends: some deep enough to stop
    Python's parser (RecursionError), some that parse but break what walks them later (at
    930 levels a field push's value parsed, then failed to be encoded for its JSON column)."""
    bodies = [("[" * d + "]" * d).encode() for d in (5_000, 100_000)]
    bodies += [wrap.replace("DEEP", "[" * d + "]" * d).encode() for d in (65, 500, 930, 990)]
    bodies += [wrap.replace("DEEP", nested(d)).encode() for d in (100, 950, 2_000)]
    return bodies


async def post(world: World, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(world.bridge_url + path, data=body, headers=headers) as response,
    ):
        return response.status, await response.text()


@pytest.mark.parametrize(
    ("endpoint", "wrap"),
    [
        ("/udesk/field-push/{}", '{"customer_token": "tg-8801", "customer": {"nick_name": DEEP}}'),
        ("/udesk/customer-token/{}", '{"timestamp": DEEP, "number": "+1 555 0100"}'),
    ],
)
async def test_deep_json_on_udesk_endpoints_gets_400(
    world: World, caplog: pytest.LogCaptureFixture, endpoint: str, wrap: str
) -> None:
    # A known customer, so a field push that parses would be written to their profile.
    world.telegram.inject_text({"id": 8801, "first_name": "Deep"}, "hello")
    await world.eventually(lambda: world.udesk.messages_for("tg-8801"), what="customer")
    caplog.set_level(logging.WARNING)
    path = endpoint.format(PUSH_SECRET)
    before = await rejected_count(world)
    bodies = deep_bodies(wrap)
    for body in bodies:
        status, text = await post(world, path, body, {"Content-Type": "application/json"})
        assert status == 400, (len(body), body[:80], status, text[:200])
        assert "nested too deeply" in json.loads(text)["detail"]
    # Every refused body kept for inspection, as on the push route.
    assert await rejected_count(world) == before + len(bodies)
    # Over the size limit, deep or not: 413 before anything is parsed.
    status, _ = await post(world, path, b"[" * (MIB + 1), {})
    assert status == 413
    assert_no_error_logged(caplog)
    # The endpoint still works for a sane body.
    status, _ = await post(world, path, json.dumps({"number": "+1 555 0100"}).encode(), {})
    assert status in (200, 404)


async def test_deep_json_on_the_webhook_gets_400(
    hardened: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
    wrap = '{"update_id": 990100, "message": {"message_id": 1, "text": DEEP}}'
    for body in deep_bodies(wrap):
        status, text = await post(hardened, "/telegram/webhook", body, headers)
        assert status == 400, (len(body), body[:80], status, text[:200])
        assert json.loads(text)["error"] == "bad_request"
    status, _ = await post(hardened, "/telegram/webhook", b"[" * (MIB + 1), headers)
    assert status == 413
    assert_no_error_logged(caplog)


async def test_a_body_not_in_its_content_encoding_gets_400(
    hardened: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    targets = [
        (f"/udesk/push/{PUSH_SECRET}", {}),
        (f"/udesk/field-push/{PUSH_SECRET}", {}),
        ("/telegram/webhook", {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}),
    ]
    for path, headers in targets:
        gzip = {**headers, "Content-Encoding": "gzip"}
        status, text = await post(hardened, path, b'{"said": "gzip", "is": "not"}', gzip)
        assert status == 400, (path, status, text)
        assert json.loads(text)["error"] == "bad_request"
    assert_no_error_logged(caplog)
