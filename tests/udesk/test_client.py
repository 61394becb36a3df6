"""The real UdeskClient against the Udesk simulator (and a capturing app) over loopback."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bridge.sandbox.udesk_sim import UdeskSimulator
from bridge.udesk import client as client_module
from bridge.udesk.budget import Priority, RateBudget
from bridge.udesk.client import UdeskClient, redact_text, redact_url
from bridge.udesk.errors import (
    PERMANENT,
    UdeskBadSignature,
    UdeskConnectionError,
    UdeskError,
    UdeskNoAgentOnline,
    UdeskNotActivated,
    UdeskPermanentError,
    UdeskQuotaExceeded,
    UdeskServerError,
    UdeskSessionGone,
    UdeskTimeoutError,
    UdeskTransientError,
    UdeskUnexpectedAnswer,
)
from bridge.udesk.wire import AgentAssignInfo, UrobotAssignInfo

EMAIL = "admin@example.com"
TOKEN = "s3cr3t-api-token-0123456789"


def vendor_sign(email: str, token: str, timestamp: str, nonce: str) -> str:
    """The vendor's formula, written out here rather than imported."""
    return hashlib.sha256(f"{email}&{token}&{timestamp}&{nonce}&v2".encode()).hexdigest()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def sim() -> AsyncIterator[UdeskSimulator]:
    simulator = UdeskSimulator(email=EMAIL, api_token=TOKEN, push_url=None)
    server = TestServer(simulator.app)
    await server.start_server()
    simulator.base_url = str(server.make_url("/open_api_v1"))  # type: ignore[attr-defined]
    try:
        yield simulator
    finally:
        await simulator.drain()
        await server.close()
        assert simulator.errors == []


MakeClient = Callable[..., UdeskClient]


@pytest.fixture
def make_client(http: aiohttp.ClientSession, sim: UdeskSimulator) -> MakeClient:
    def make(**overrides: Any) -> UdeskClient:
        options: dict[str, Any] = {
            "session": http,
            "budget": RateBudget.unlimited(),
            "timeout": 5.0,
            "max_attempts": 3,
            "backoff_base": 0.001,
            "backoff_cap": 0.01,
        }
        base_url = overrides.pop("base_url", sim.base_url)  # type: ignore[attr-defined]
        api_token = overrides.pop("api_token", TOKEN)
        options.update(overrides)
        return UdeskClient(base_url, EMAIL, api_token, **options)

    return make


@pytest.fixture
def client(make_client: MakeClient) -> UdeskClient:
    return make_client()


async def agent_session(client: UdeskClient, sim: UdeskSimulator, token: str) -> int:
    await client.create_customer(token, f"Telegram {token}")
    answer = await client.create_session(token, assign_type="agent")
    assert answer.code == 1000 and not answer.queued
    assert answer.im_sub_session_id is not None
    return answer.im_sub_session_id


@asynccontextmanager
async def capturing_udesk(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    """A stand-in for Udesk answering every path with ``handler``; yields its API root."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = TestServer(app)
    await server.start_server()
    try:
        yield str(server.make_url("/open_api_v1"))
    finally:
        await server.close()


# --- signing -----------------------------------------------------------------------------


async def test_signature_and_fresh_nonce_per_retry(
    http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """A capturing app sees every attempt: signed by the vendor's formula, new nonce each."""
    seen: list[dict[str, Any]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "body": await request.json(),
            }
        )
        if len(seen) <= 2:
            return web.Response(status=503, text="busy")
        return web.json_response({"code": 1000})

    caplog.set_level(logging.DEBUG, logger="bridge.udesk")
    async with capturing_udesk(handler) as base_url:
        client = UdeskClient(
            base_url,
            EMAIL,
            TOKEN,
            session=http,
            budget=RateBudget.unlimited(),
            backoff_base=0.001,
            backoff_cap=0.005,
        )
        answer = await client.send_message("cust-1", 42, "tg-1-2", data="hello")
    assert answer.code == 1000
    assert len(seen) == 3
    assert client.retries == 2
    nonces = set()
    for call in seen:
        q = call["query"]
        assert call["method"] == "POST"
        assert call["path"] == "/open_api_v1/im/messages"
        assert q["email"] == EMAIL
        assert q["sign_version"] == "v2"
        assert q["sign"] == vendor_sign(EMAIL, TOKEN, q["timestamp"], q["nonce"])
        assert q["sign"] == q["sign"].lower() and len(q["sign"]) == 64
        assert abs(int(q["timestamp"]) - datetime.now().timestamp()) < 60
        assert "api_token" not in q and TOKEN not in json.dumps(call)
        assert call["body"] == {
            "customer_token": "cust-1",
            "im_sub_session_id": 42,
            "message_id": "tg-1-2",
            "type": "message",
            "data": {"content": "hello"},
        }
        nonces.add(q["nonce"])
    assert len(nonces) == 3  # fresh per attempt, retries included
    # Nothing secret in the logs: not the token, not a sign, not a nonce, no query string.
    text = caplog.text
    assert "/im/messages" in text
    assert TOKEN not in text
    for call in seen:
        assert call["query"]["sign"] not in text
        assert call["query"]["nonce"] not in text
    assert "sign=" not in text and "?" not in text
    for record in caplog.records:
        assert record.name == "bridge.udesk"


async def test_the_simulator_accepts_our_signature(
    client: UdeskClient, sim: UdeskSimulator
) -> None:
    answer = await client.create_customer("tg-100", "Ann", "Telegram user 100", "ru")
    assert answer.code == 1000 and not answer.already_existed
    assert answer.customer is not None and answer.customer.open_api_token == "tg-100"
    (call,) = sim.calls
    assert (call.method, call.path, call.code) == ("POST", "/customers", 1000)
    assert call.body["customer"]["open_api_token"] == "tg-100"


async def test_wrong_token_is_transient_but_not_retried_within_the_call(
    make_client: MakeClient, sim: UdeskSimulator
) -> None:
    client = make_client(api_token="wrong-token")
    with pytest.raises(UdeskBadSignature) as info:
        await client.queue_status("tg-1")
    assert info.value.code == 1001
    # Transient: the operator fixing the token lets the waiting messages through; but not
    # repeated within the call, where it cannot change and would only spend the quota.
    assert isinstance(info.value, UdeskTransientError)
    assert client.calls == 1
    assert "wrong-token" not in str(info.value)


async def test_reused_nonce_is_bad_signature(
    client: UdeskClient, sim: UdeskSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = client_module.signed_params
    monkeypatch.setattr(
        client_module, "signed_params", lambda email, token: real(email, token, nonce="same")
    )
    await client.queue_status("tg-1")
    with pytest.raises(UdeskBadSignature) as info:
        await client.queue_status("tg-1")
    assert info.value.code == 1002


# --- customers ---------------------------------------------------------------------------


async def test_customer_lifecycle(client: UdeskClient, sim: UdeskSimulator) -> None:
    assert await client.get_customer_by_token("tg-7") is None
    created = await client.create_customer("tg-7", "Bob", "first", "en", cellphones=["+1555"])
    assert created.customer is not None and created.customer.id is not None
    again = await client.create_customer("tg-7", "Bob", "second")
    assert again.already_existed
    assert again.customer is not None and again.customer.id == created.customer.id
    updated = await client.update_customer_by_token("tg-7", nick_name="Robert", level="vip")
    assert updated.customer is not None
    assert (updated.customer.nick_name, updated.customer.level) == ("Robert", "vip")
    fetched = await client.get_customer_by_token("tg-7")
    assert fetched is not None and fetched.nick_name == "Robert"
    assert [p.content for p in fetched.cellphones] == ["+1555"]
    gone = await client.destroy_customer("tg-7")
    assert gone.customer_id == created.customer.id
    assert await client.get_customer_by_token("tg-7") is None


async def test_other_create_errors_are_not_already_existed(
    client: UdeskClient, sim: UdeskSimulator
) -> None:
    await client.create_customer("tg-a", "A", email="same@example.com")
    with pytest.raises(UdeskPermanentError) as info:
        await client.create_customer("tg-b", "B", email="same@example.com")
    assert info.value.code == 2000
    assert "Email duplicate" in str(info.value)


# --- sessions ----------------------------------------------------------------------------


async def test_agent_session_queue_and_close(client: UdeskClient, sim: UdeskSimulator) -> None:
    sim.set_agent(1, "Tom", capacity=1)
    session_id = await agent_session(client, sim, "tg-1")
    first = await client.create_session("tg-1", assign_type="agent")  # asked again: same
    assert isinstance(first.assign_info, AgentAssignInfo)
    assert first.im_sub_session_id == session_id
    assert first.agent is not None and first.agent.agent_name == "Tom"
    assert first.survey_options is not None and first.survey_options.choices()

    await client.create_customer("tg-2", "Second")
    queued = await client.create_session("tg-2", assign_type="agent")
    assert queued.code == 2001 and queued.queued
    assert queued.position == 1
    assert queued.queue and queued.queue.startswith("queue:")
    status = await client.queue_status("tg-2")
    assert (status.status, status.count) == ("In queue", 1)
    assert (await client.customer_status("tg-2")).status_code == 2
    await client.close_queue("tg-2", queued.queue)
    assert (await client.queue_status("tg-2")).status == "Not in queue"

    assert (await client.customer_status("tg-1")).status_code == 1
    await client.close_session(session_id)
    with pytest.raises(UdeskSessionGone) as info:
        await client.close_session(session_id)
    assert info.value.code == 9200


async def test_assignment_threshold_is_queued_without_a_queue(
    client: UdeskClient, sim: UdeskSimulator
) -> None:
    sim.set_agent(1, "Tom")
    sim.inject_fault("/im/sessions", "assigning", count=1, method="POST")
    answer = await client.create_session("tg-1", assign_type="agent")
    assert answer.queued and answer.position == 0 and answer.queue is None


async def test_no_agent_online(client: UdeskClient, sim: UdeskSimulator) -> None:
    sim.set_agent(1, "Tom", online=False)
    await client.create_customer("tg-1", "One")
    with pytest.raises(UdeskNoAgentOnline) as info:
        await client.create_session("tg-1", assign_type="agent")
    assert info.value.code == 2002
    assert client.calls == 2  # permanent: not retried


async def test_robot_and_urobot_sessions(client: UdeskClient, sim: UdeskSimulator) -> None:
    robot = await client.create_session("tg-r", assign_type="robot")
    assert robot.robot is not None and robot.robot.robot_name
    urobot = await client.create_session("tg-u", assign_type="urobot", robot_id=12362, scene_id=39)
    assert isinstance(urobot.assign_info, UrobotAssignInfo)
    assert urobot.urobot is not None and urobot.urobot.session_id is not None
    with pytest.raises(UdeskPermanentError) as info:  # unknown robot: 2005, at once
        await client.create_session("tg-u", assign_type="urobot", robot_id=1, scene_id=1)
    assert info.value.code == 2005 and type(info.value) is UdeskPermanentError
    assert len(sim.calls_to("/im/sessions")) == 3


async def test_agent_status(client: UdeskClient, sim: UdeskSimulator) -> None:
    sim.set_agent(1, "Tom", group_id=7)
    sim.set_agent(2, "Ann", online=False, group_id=8)
    everyone = await client.agent_status()
    assert {a.name for a in everyone.agents} == {"Tom", "Ann"}
    group = await client.agent_status(7)
    assert [(a.id, a.online) for a in group.agents] == [(1, True)]


# --- messages ----------------------------------------------------------------------------


async def test_send_message_and_session_gone(client: UdeskClient, sim: UdeskSimulator) -> None:
    sim.set_agent(1, "Tom")
    session_id = await agent_session(client, sim, "tg-1")
    await client.send_message("tg-1", session_id, "tg-1-100", data="hi there")
    await client.send_message(
        "tg-1", session_id, "tg-1-101", "image", {"content": "https://x/1.png"}
    )
    assert [m.data["content"] for m in sim.messages_for("tg-1")] == [
        "hi there",
        "https://x/1.png",
    ]
    await client.close_session(session_id)
    with pytest.raises(UdeskSessionGone) as info:
        await client.send_message("tg-1", session_id, "tg-1-102", data="too late")
    assert info.value.code == 9200


async def test_server_errors_twice_then_success(client: UdeskClient, sim: UdeskSimulator) -> None:
    sim.set_agent(1, "Tom")
    session_id = await agent_session(client, sim, "tg-1")
    sim.inject_fault("/im/messages", "http_500", count=2)
    await client.send_message("tg-1", session_id, "tg-1-7", data="through")
    calls = sim.calls_to("/im/messages")
    assert [c.http_status for c in calls] == [500, 500, 200]
    assert client.retries == 2
    assert len(sim.messages_for("tg-1")) == 1


async def test_server_errors_exhaust_attempts(make_client: MakeClient, sim: UdeskSimulator) -> None:
    client = make_client(max_attempts=2)
    sim.inject_fault("/im/queue_status", "http_502")
    with pytest.raises(UdeskServerError):
        await client.queue_status("tg-1")
    assert client.calls == 2


@pytest.mark.parametrize("kind", ["quota", "http_429"])
async def test_quota_is_retried(client: UdeskClient, sim: UdeskSimulator, kind: str) -> None:
    sim.inject_fault("/im/queue_status", kind, count=2)
    answer = await client.queue_status("tg-1")
    assert answer.status == "Not in queue"
    assert client.calls == 3


async def test_quota_exhausts_attempts(make_client: MakeClient, sim: UdeskSimulator) -> None:
    client = make_client(max_attempts=2)
    sim.configure(quota_per_minute=1)
    await client.queue_status("tg-1")
    with pytest.raises(UdeskQuotaExceeded) as info:
        await client.queue_status("tg-1")
    assert info.value.code == 429


async def test_timeout_after_max_attempts(make_client: MakeClient, sim: UdeskSimulator) -> None:
    client = make_client(timeout=0.2, max_attempts=3)
    sim.inject_fault("/im/queue_status", "timeout", delay=1.0)
    started = asyncio.get_running_loop().time()
    with pytest.raises(UdeskTimeoutError):
        await client.queue_status("tg-1")
    assert client.calls == 3
    assert asyncio.get_running_loop().time() - started < 2.5


async def test_ticket_creation_is_not_retried_after_a_timeout(
    make_client: MakeClient, sim: UdeskSimulator
) -> None:
    client = make_client(timeout=0.2, max_attempts=3)
    await client.create_customer("tg-1", "One")
    sim.inject_fault("/tickets", "timeout", delay=0.6, method="POST")
    with pytest.raises(UdeskTimeoutError):
        await client.create_ticket("Offline message", "hello?", customer_token="tg-1")
    assert client.calls == 2  # the customer, then one ticket attempt


async def test_connection_refused(make_client: MakeClient) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = make_client(base_url=f"http://127.0.0.1:{port}/open_api_v1", max_attempts=2)
    with pytest.raises(UdeskConnectionError):
        await client.queue_status("tg-1")
    assert client.calls == 2


async def test_unknown_path_is_permanent(client: UdeskClient, sim: UdeskSimulator) -> None:
    with pytest.raises(UdeskPermanentError) as info:
        await client.request(
            "GET", "/no/such/thing", client_module.CodeAnswer, priority=Priority.POLL
        )
    assert info.value.code == 404
    assert client.calls == 1


async def test_message_preview(make_client: MakeClient, sim: UdeskSimulator) -> None:
    client = make_client()
    sim.set_agent(1, "Tom")
    session_id = await agent_session(client, sim, "tg-1")
    assert await client.message_preview(session_id, "typing...") is True
    assert sim.sessions[session_id].preview == "typing..."
    sim.configure(preview_activated=False)
    with pytest.raises(UdeskNotActivated) as info:
        await client.message_preview(session_id, "more")
    assert info.value.code == 2065
    sim.configure(preview_activated=True)
    await client.close_session(session_id)
    with pytest.raises(UdeskSessionGone) as gone:
        await client.message_preview(session_id, "more")
    assert gone.value.code == 2062
    # a preview is never retried
    sim.inject_fault("/im/sessions", "http_500", method="PUT")
    with pytest.raises(UdeskServerError):
        await client.message_preview(session_id, "x")
    assert len(sim.calls_to("/im/sessions", method="PUT")) == 4


async def test_previews_refused_when_budget_is_tight(
    make_client: MakeClient, sim: UdeskSimulator
) -> None:
    budget = RateBudget(6, 60, preview_reserve=3)
    client = make_client(budget=budget)
    sim.set_agent(1, "Tom")
    session_id = await agent_session(client, sim, "tg-1")  # 2 calls: 4 tokens left
    assert await client.message_preview(session_id, "a") is True  # 3 left
    assert await client.message_preview(session_id, "b") is False  # only the reserve left
    assert budget.previews_refused == 1
    assert [c.body["content"] for c in sim.calls_to("/im/sessions", method="PUT")] == ["a"]
    for _ in range(3):  # real calls still get the reserve
        await client.queue_status("tg-1")
    assert budget.tokens_available() == 0


async def test_budget_serves_messages_before_polls(
    make_client: MakeClient, sim: UdeskSimulator
) -> None:
    budget = RateBudget(1, 0.15)
    client = make_client(budget=budget)
    sim.set_agent(1, "Tom")
    await client.create_customer("tg-1", "One")  # takes the only token
    polls = [asyncio.create_task(client.queue_status("tg-1")) for _ in range(2)]
    await asyncio.sleep(0.02)
    message = asyncio.create_task(client.create_session("tg-1", assign_type="agent"))
    await asyncio.gather(message, *polls)
    assert [c.path for c in sim.calls] == [
        "/customers",
        "/im/sessions",
        "/im/queue_status",
        "/im/queue_status",
    ]
    assert budget.waits == 3
    assert budget.waits_by_priority[Priority.MESSAGE] == 1


async def test_retries_take_the_budget_again(make_client: MakeClient, sim: UdeskSimulator) -> None:
    budget = RateBudget(100, 60)
    client = make_client(budget=budget)
    sim.inject_fault("/im/queue_status", "http_500", count=2)
    await client.queue_status("tg-1")
    assert budget.granted == 3


# --- surveys, robots, misc ---------------------------------------------------------------


async def test_surveys_and_robot_calls(client: UdeskClient, sim: UdeskSimulator) -> None:
    sim.set_agent(1, "Tom")
    session_id = await agent_session(client, sim, "tg-1")
    answer = await client.create_session("tg-1", assign_type="agent")
    assert answer.survey_options is not None
    option = answer.survey_options.choices()[0]
    assert option.id is not None
    await client.survey(session_id, int(option.id), remark="great", resolved_state_v2=0)
    await client.robot_survey("tg-u", 101, 2, 12362, 39, remark="ok")
    await client.answer_survey("tg-u", 55392, 101, 1, 12362, 39)
    await client.transfer_survey(101, 12362, 39)
    await client.robot_useful("tg-r", "f862f80d-89aa", 210530, True)
    urobot = await client.create_session("tg-u", assign_type="urobot", robot_id=12362, scene_id=39)
    assert urobot.urobot is not None
    await client.flow("tg-u", -1, 81, 12362, 39)
    await client.send_message(
        "tg-u",
        -1,
        "tg-u-1",
        data="flow please",
        robot_id=12362,
        scene_id=39,
        urobot_session_id=urobot.urobot.session_id,
    )
    await client.customer_online_state("tg-1", True)
    assert sim.customer_by_token("tg-1").online_state == 1  # type: ignore[union-attr]
    kinds = [s.kind for s in sim.surveys]
    assert kinds == ["session", "robot", "answer", "transfer", "robot_useful"]
    assert sim.surveys[4].params["useful"] is True
    with pytest.raises(UdeskPermanentError) as info:
        await client.survey(session_id, 99999)
    assert info.value.code == 2000


async def test_unread_and_destroy_session(client: UdeskClient, sim: UdeskSimulator) -> None:
    sim.set_agent(1, "Tom")
    session_id = await agent_session(client, sim, "tg-1")
    customer = await client.get_customer_by_token("tg-1")
    assert customer is not None and customer.id is not None
    await sim.agent_reply("tg-1", "are you there?")  # no push_url: stays unread
    unread = await client.unread_customer_offline(session_id, customer.id)
    assert unread.count is not None and unread.count >= 1
    assert any(m.data and m.data.content == "are you there?" for m in unread.unread_messages)
    await client.close_session(session_id)
    now = datetime.now(sim.tz)
    await client.destroy_session(now - timedelta(days=1), now + timedelta(days=1), customer.id)
    assert session_id in sim.destroyed_sessions


async def test_tickets(client: UdeskClient, sim: UdeskSimulator) -> None:
    await client.create_customer("tg-1", "One")
    created = await client.create_ticket("Offline message", "Please call me", customer_token="tg-1")
    assert created.ticket_id is not None
    uploaded = await client.upload_ticket_file(
        created.ticket_id, b"\x89PNG fake", "photo.png", mime_type="image/png"
    )
    assert uploaded.file is not None and uploaded.file.attachment_id is not None
    assert sim.attachments[uploaded.file.attachment_id].data == b"\x89PNG fake"
    for_reply = await client.upload_ticket_file(
        created.ticket_id, b"%PDF-1.4", "scan.pdf", for_reply=True
    )
    assert for_reply.file is not None and for_reply.file.attachable_type == "Reply"
    assert for_reply.file.attachment_id is not None
    reply = await client.ticket_customer_reply(
        created.ticket_id, "more details", attachment_ids=[for_reply.file.attachment_id]
    )
    assert reply.reply is not None and reply.reply.content == "more details"
    assert [a.file_name for a in reply.reply.attachments] == ["scan.pdf"]
    await sim.ticket_reply(created.ticket_id, "We will call you")
    replies = await client.ticket_replies(created.ticket_id)
    contents = [(r.content, r.from_customer) for r in replies.replies]
    assert ("more details", True) in contents
    assert ("We will call you", False) in contents


# --- logging and redaction ---------------------------------------------------------------


async def test_logs_never_show_secrets(
    make_client: MakeClient, sim: UdeskSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bridge.udesk")
    client = make_client(timeout=0.2, max_attempts=2)
    sim.set_agent(1, "Tom")
    session_id = await agent_session(client, sim, "tg-1")
    sim.inject_fault("/im/messages", "http_500", count=1)
    await client.send_message("tg-1", session_id, "tg-1-1", data="private words")
    sim.inject_fault("/im/queue_status", "timeout", delay=0.5)
    with pytest.raises(UdeskTimeoutError):
        await client.queue_status("tg-1")
    with pytest.raises(UdeskBadSignature):
        await make_client(api_token="another-secret").queue_status("tg-1")
    text = caplog.text
    assert "/im/messages" in text and "attempt=1" in text and "elapsed=" in text
    for secret in (TOKEN, "another-secret", "sign=", "nonce=", "private words", EMAIL):
        assert secret not in text
    assert all(r.name == "bridge.udesk" for r in caplog.records)
    assert any(getattr(r, "udesk_path", None) == "/im/messages" for r in caplog.records)
    assert TOKEN not in repr(client)


def test_redact_url() -> None:
    url = (
        "https://demo.udesk.cn/open_api_v1/im/sessions?email=admin@udesk.cn"
        "&timestamp=1494474404&sign=6892f1b7&nonce=2d931510&sign_version=v2&customer_token=abc"
    )
    redacted = redact_url(url)
    assert "6892f1b7" not in redacted and "2d931510" not in redacted
    assert "admin@udesk.cn" not in redacted
    assert redacted.startswith("https://demo.udesk.cn/open_api_v1/im/sessions?")
    assert "timestamp=1494474404" in redacted and "customer_token=abc" in redacted
    assert "sign=***" in redacted
    bot = redact_url("https://api.telegram.org/bot123:ABC/getMe")
    assert bot == "https://api.telegram.org/bot***/getMe"
    assert "123:ABC" not in redact_url("https://api.telegram.org/file/bot123:ABC/photos/1.jpg")
    assert "pw" not in redact_url("postgresql://user:pw@db/bridge")
    assert "6892f1b7" not in redact_text(f"Connection timeout to host {url} after 10s")


@pytest.mark.parametrize("kind", ["http_403", "http_404", "http_408", "clock_skew", "code_7777"])
async def test_answers_that_prove_nothing_are_retried(
    client: UdeskClient, sim: UdeskSimulator, kind: str
) -> None:
    """A proxy's HTML error page, a refused timestamp, a code nobody documented: the next
    attempt gets through."""
    sim.inject_fault("/im/agent_status", kind, count=1)
    await client.agent_status()
    assert [c.fault for c in sim.calls_to("/im/agent_status")] == [kind, None]


@pytest.mark.parametrize(
    ("kind", "error"),
    [("http_403", UdeskUnexpectedAnswer), ("clock_skew", UdeskBadSignature)],
)
async def test_transient_answers_stay_transient_when_attempts_run_out(
    client: UdeskClient, sim: UdeskSimulator, kind: str, error: type[UdeskError]
) -> None:
    sim.inject_fault("/im/agent_status", kind)
    with pytest.raises(error) as info:
        await client.agent_status()
    assert isinstance(info.value, UdeskTransientError)
    assert client.calls == 3


@pytest.mark.parametrize("code", sorted(PERMANENT))
async def test_only_the_permanent_codes_end_a_call_at_once(
    client: UdeskClient, sim: UdeskSimulator, code: int
) -> None:
    sim.inject_fault("/im/agent_status", f"code_{code}")
    with pytest.raises(UdeskPermanentError) as info:
        await client.agent_status()
    assert info.value.code == code and isinstance(info.value, PERMANENT[code].error)
    assert client.calls == 1


async def test_query_values_arrive_intact(http: aiohttp.ClientSession) -> None:
    """The query string is encoded by the client itself: reserved and non-ASCII characters
    in a value reach Udesk as they were, beside a signature Udesk accepts."""
    seen: list[dict[str, str]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(dict(request.query))
        return web.json_response({"code": 1000, "queue_size": 0})

    token = "tg a&b=c+d/é?#%20"
    async with capturing_udesk(handler) as base_url:
        client = UdeskClient(base_url, EMAIL, TOKEN, session=http, budget=RateBudget.unlimited())
        await client.queue_status(token)
    (query,) = seen
    assert query["customer_token"] == token
    assert query["sign"] == vendor_sign(EMAIL, TOKEN, query["timestamp"], query["nonce"])
