"""The Udesk simulator answers and pushes as the vendor's documentation says."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bridge.sandbox.udesk_sim import UdeskSimulator
from bridge.udesk.signing import signed_params

EMAIL, TOKEN = "admin@example.com", "tok"


class Udesk:
    """Signed calls to the simulator's Open API, answering the JSON body."""

    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client

    async def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, Any] | None = None,
        auth: dict[str, str] | None = None,
    ) -> Any:
        query = {**(params or {}), **(auth or signed_params(EMAIL, TOKEN))}
        async with self.client.request(
            method, "/open_api_v1" + path, params=query, json=body
        ) as response:
            assert response.status == 200
            return await response.json()


class Receiver:
    """The bridge's Receiving Message URL, reduced to a list."""

    def __init__(self) -> None:
        self.pushes: list[Any] = []
        self.status = 200

    async def handle(self, request: web.Request) -> web.Response:
        self.pushes.append(await request.json())
        return web.Response(status=self.status)


@pytest.fixture
def sim() -> UdeskSimulator:
    return UdeskSimulator(email=EMAIL, api_token=TOKEN)


@pytest.fixture
async def client(sim: UdeskSimulator) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(sim.app)) as client:
        yield client


@pytest.fixture
def udesk(client: TestClient[Any, Any]) -> Udesk:
    return Udesk(client)


@pytest.fixture
async def receiver(sim: UdeskSimulator) -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/udesk/push/secret", receiver.handle)
    async with TestServer(app) as server:
        sim.push_url = str(server.make_url("/udesk/push/secret"))
        yield receiver


async def new_session(udesk: Udesk, token: str, **extra: Any) -> dict[str, Any]:
    await udesk("POST", "/customers", {"customer": {"nick_name": token, "open_api_token": token}})
    body = {"customer_token": token, "assign_type": "agent", **extra}
    answer: dict[str, Any] = await udesk("POST", "/im/sessions", body)
    return answer


def text(token: str, session_id: int, message_id: str, content: str) -> dict[str, Any]:
    return {
        "customer_token": token,
        "im_sub_session_id": session_id,
        "message_id": message_id,
        "type": "message",
        "data": {"content": content},
    }


# --- authentication -------------------------------------------------------------------------


async def test_valid_signature_is_accepted_and_recorded(sim: UdeskSimulator, udesk: Udesk) -> None:
    assert (await udesk("GET", "/im/agent_status"))["code"] == 1000
    call = sim.calls[-1]
    assert (call.method, call.path, call.code) == ("GET", "/im/agent_status", 1000)
    assert "sign" not in call.query and "nonce" not in call.query


async def test_wrong_signature_or_email_is_rejected(udesk: Udesk) -> None:
    wrong_token = signed_params(EMAIL, "not-the-token")
    wrong_email = signed_params("someone@example.com", TOKEN)
    assert (await udesk("GET", "/im/agent_status", auth=wrong_token))["code"] == 1001
    assert (await udesk("GET", "/im/agent_status", auth=wrong_email))["code"] == 1001


async def test_reused_nonce_is_rejected(udesk: Udesk) -> None:
    auth = signed_params(EMAIL, TOKEN, nonce="only-once")
    assert (await udesk("GET", "/im/agent_status", auth=auth))["code"] == 1000
    assert (await udesk("GET", "/im/agent_status", auth=auth))["code"] == 1002


async def test_skewed_timestamp_is_rejected(udesk: Udesk) -> None:
    for skew in (-301, 301):
        auth = signed_params(EMAIL, TOKEN, now=time.time() + skew)
        assert (await udesk("GET", "/im/agent_status", auth=auth))["code"] == 1002


async def test_quota_per_minute(sim: UdeskSimulator, udesk: Udesk) -> None:
    sim.quota_per_minute = 2
    codes = [(await udesk("GET", "/im/agent_status"))["code"] for _ in range(3)]
    assert codes == [1000, 1000, 429]


# --- customers ------------------------------------------------------------------------------


async def test_customer_create_duplicate_and_lookup(udesk: Udesk) -> None:
    body = {"customer": {"nick_name": "Ann", "open_api_token": "tg-1"}}
    created = await udesk("POST", "/customers", body)
    assert created["code"] == 1000
    assert isinstance(created["customer"]["id"], int)

    duplicate = await udesk("POST", "/customers", body)
    assert duplicate["code"] == 2000
    assert "open_api_token duplicate" in duplicate["exception"]["message"]

    found = await udesk(
        "GET", "/customers/get_customer", params={"type": "token", "content": "tg-1"}
    )
    assert found["customer"]["id"] == created["customer"]["id"]
    missing = await udesk(
        "GET", "/customers/get_customer", params={"type": "token", "content": "nobody"}
    )
    assert missing["code"] == 2005


# --- sessions -------------------------------------------------------------------------------


async def test_session_with_free_agent_is_assigned_and_announced(
    sim: UdeskSimulator, udesk: Udesk, receiver: Receiver
) -> None:
    sim.set_agent(7, "Tom")
    answer = await new_session(udesk, "c1")
    assert answer["code"] == 1000
    info = answer["assign_info"]
    assert (info["agent_id"], info["agent_name"]) == (7, "Tom")
    assert info["survey_options"]["enabled"] is True
    assert info["survey_options"]["show_type"] == "star"

    await sim.drain()
    [push] = receiver.pushes
    assert push["customer_token"] == "c1" and push["assign_type"] == "agent"
    assert [m["type"] for m in push["messages"]] == ["start_session", "message"]
    assert {m["im_sub_session_id"] for m in push["messages"]} == {info["im_sub_session_id"]}
    assert re.fullmatch(r"\d{8} \d\d:\d\d:\d\d", push["messages"][0]["message_created_at"])

    again = await udesk("POST", "/im/sessions", {"customer_token": "c1", "assign_type": "agent"})
    assert again["assign_info"]["im_sub_session_id"] == info["im_sub_session_id"]
    assert len(sim.sessions) == 1


async def test_full_agents_queue_customers_in_order(sim: UdeskSimulator, udesk: Udesk) -> None:
    sim.set_agent(7, "Tom", capacity=1)
    assert (await new_session(udesk, "a"))["code"] == 1000
    b = await new_session(udesk, "b")
    c = await new_session(udesk, "c")
    assert (b["code"], b["assign_info"]["count"]) == (2001, 1)
    assert (c["code"], c["assign_info"]["count"]) == (2001, 2)
    assert b["assign_info"]["queue"].startswith("queue:company:1:agent:")

    again = await udesk("POST", "/im/sessions", {"customer_token": "b", "assign_type": "agent"})
    assert again["assign_info"]["count"] == 1 and len(sim.queue) == 2

    queued = await udesk("POST", "/im/messages", text("b", -3, "b-1", "still waiting"))
    assert queued["code"] == 1000

    await sim.close_session("a")
    [started] = await sim.advance_queue()
    assert started.customer_token == "b"
    assert sim.messages_for("b")[0].session_id == started.id
    status = await udesk("GET", "/im/queue_status", params={"customer_token": "c"})
    assert (status["status"], status["count"]) == ("In queue", 1)


async def test_no_agent_online_answers_2002(sim: UdeskSimulator, udesk: Udesk) -> None:
    assert (await new_session(udesk, "c1"))["code"] == 2002
    sim.set_agent(7, "Tom", online=False)
    assert (await new_session(udesk, "c2"))["code"] == 2002


async def test_transfer_moves_the_customer_to_a_new_session(
    sim: UdeskSimulator, udesk: Udesk, receiver: Receiver
) -> None:
    sim.set_agent(7, "Tom")
    sim.set_agent(8, "Jerry")
    old_id = (await new_session(udesk, "c1", agent_id=7))["assign_info"]["im_sub_session_id"]
    new = await sim.transfer("c1", 8)
    await sim.drain()
    assert [m["type"] for m in receiver.pushes[-1]["messages"]] == ["transfer", "message"]
    assert receiver.pushes[-1]["messages"][0]["im_sub_session_id"] == new.id
    gone = await udesk("POST", "/im/messages", text("c1", old_id, "m1", "hi"))
    assert gone["code"] == 9200


# --- messages -------------------------------------------------------------------------------


async def test_message_to_closed_or_unknown_session_answers_9200(
    sim: UdeskSimulator, udesk: Udesk
) -> None:
    sim.set_agent(7, "Tom")
    session_id = (await new_session(udesk, "c1"))["assign_info"]["im_sub_session_id"]
    assert (await udesk("POST", "/im/messages", text("c1", session_id, "m1", "hi")))["code"] == 1000
    await sim.close_session("c1")
    assert (await udesk("POST", "/im/messages", text("c1", session_id, "m2", "hi")))["code"] == 9200
    assert (await udesk("POST", "/im/messages", text("c1", 424242, "m3", "hi")))["code"] == 9200
    assert [m.message_id for m in sim.messages_for("c1")] == ["m1"]


async def test_repeated_message_id_is_accepted_but_recorded_once(
    sim: UdeskSimulator, udesk: Udesk
) -> None:
    sim.set_agent(7, "Tom")
    session_id = (await new_session(udesk, "c1"))["assign_info"]["im_sub_session_id"]
    for _ in range(2):
        answer = await udesk("POST", "/im/messages", text("c1", session_id, "tg-1_5", "hi"))
        assert answer["code"] == 1000
    assert len(sim.messages_for("c1")) == 1
    assert [m.message_id for m in sim.duplicate_messages] == ["tg-1_5"]

    bad = await udesk("POST", "/im/messages", text("c1", session_id, "tg 1/6", "hi"))
    assert bad["code"] == 2000
    assert len(sim.messages_for("c1")) == 1


async def test_preview_codes_and_rate_violations(sim: UdeskSimulator, udesk: Udesk) -> None:
    sim.set_agent(7, "Tom")
    fast = (await new_session(udesk, "c1"))["assign_info"]["im_sub_session_id"]
    slow = (await new_session(udesk, "c2"))["assign_info"]["im_sub_session_id"]

    async def preview(session_id: int, content: str) -> int:
        path = f"/im/sessions/{session_id}/message_preview"
        return int((await udesk("PUT", path, {"content": content}))["code"])

    assert [await preview(fast, "h" * n) for n in range(1, 5)] == [1000, 1000, 1000, 429]
    assert len(sim.preview_rate_violations) == 1
    assert sim.preview_rate_violations[0].session_id == fast

    sim.preview_activated = False
    assert await preview(slow, "typing") == 2065
    sim.preview_activated = True
    await sim.close_session("c2")
    assert await preview(slow, "typing") == 2062
    assert len(sim.preview_rate_violations) == 1
    assert len(sim.previews) == 6


# --- pushes ---------------------------------------------------------------------------------


async def test_failed_pushes_leave_agent_messages_unread(
    sim: UdeskSimulator, udesk: Udesk, receiver: Receiver
) -> None:
    sim.set_agent(7, "Tom")
    info = (await new_session(udesk, "c1"))["assign_info"]
    customer_id = sim.customer_by_token("c1").id  # type: ignore[union-attr]
    delivered = await sim.agent_reply("c1", "hello")
    assert receiver.pushes[-1]["messages"][0]["message_id"] == delivered
    assert receiver.pushes[-1]["messages"][0]["data"] == {"content": "hello"}

    receiver.status = 500
    refused = await sim.agent_reply("c1", "are you there?")
    sim.push_enabled = False
    unreachable = await sim.agent_reply("c1", "https://x.test/a.png", type="image")
    assert sim.push_log[-1].error == "push disabled"

    unread = await udesk(
        "GET",
        "/im/messages/unread_customer_offline",
        params={"im_sub_session_id": info["im_sub_session_id"], "customer_id": customer_id},
    )
    assert unread["count"] == 2
    assert [m["message_id"] for m in unread["unread_messages"]] == [refused, unreachable]


async def test_http_500_fault_twice_then_ok(
    sim: UdeskSimulator, client: TestClient[Any, Any]
) -> None:
    sim.inject_fault("/im/agent_status", "http_500", count=2)
    statuses = []
    for _ in range(3):
        params = signed_params(EMAIL, TOKEN)
        async with client.get("/open_api_v1/im/agent_status", params=params) as response:
            statuses.append(response.status)
    assert statuses == [500, 500, 200]
    assert [c.fault for c in sim.calls] == ["http_500", "http_500", None]


async def test_proxy_page_clock_skew_and_code_faults(
    sim: UdeskSimulator, client: TestClient[Any, Any]
) -> None:
    sim.inject_fault("/im/agent_status", "http_403", count=1)
    sim.inject_fault("/im/agent_status", "clock_skew", count=1)
    sim.inject_fault("/im/agent_status", "code_2000", count=1)
    answers = []
    for _ in range(4):
        params = signed_params(EMAIL, TOKEN)
        async with client.get("/open_api_v1/im/agent_status", params=params) as response:
            answers.append((response.status, response.content_type, await response.text()))
    status, content_type, page = answers[0]
    assert (status, content_type) == (403, "text/html")
    assert "<title>403 Forbidden</title>" in page
    assert json.loads(answers[1][2]) == {"code": 1002, "message": "timestamp expired"}
    assert json.loads(answers[2][2])["code"] == 2000
    assert json.loads(answers[3][2])["code"] == 1000
    assert [c.code for c in sim.calls] == [None, 1002, 2000, 1000]


async def test_robot_question_gets_a_robot_push(
    sim: UdeskSimulator, udesk: Udesk, receiver: Receiver
) -> None:
    answer = await udesk("POST", "/im/messages", text("c1", 0, "q-1", "What do you do?"))
    assert answer["code"] == 1000
    await sim.drain()
    [push] = receiver.pushes
    assert push["assign_type"] == "robot"
    data = push["messages"][0]["data"]
    assert data["question_id"] != 0 and data["answer"]
    assert data["gus_list"] and data["relate_list"] and data["third_url"]["url"]


async def test_urobot_question_and_flow_get_urobot_pushes(
    sim: UdeskSimulator, udesk: Udesk, receiver: Receiver
) -> None:
    no_robot = await udesk(
        "POST", "/im/sessions", {"customer_token": "c1", "assign_type": "urobot"}
    )
    assert no_robot["code"] != 1000
    robot = {"robot_id": 12362, "scene_id": 39}
    session = await udesk(
        "POST", "/im/sessions", {"customer_token": "c1", "assign_type": "urobot", **robot}
    )
    session_id = session["assign_info"]["sessionId"]

    question = {**text("c1", -1, "u-1", "show me the flow"), **robot}
    assert (await udesk("POST", "/im/messages", question))["code"] == 1000
    await sim.drain()
    first = receiver.pushes[-1]
    assert first["assign_type"] == "urobot"
    assert first["messages"]["sessionId"] == session_id
    assert 'data-type="2" class="flow-item" data-id="81"' in first["messages"]["flowContent"]

    body = {"customer_token": "c1", "im_sub_session_id": session_id, "flow_id": 81, **robot}
    assert (await udesk("POST", "/im/messages/flow", body))["code"] == 1000
    await sim.drain()
    assert receiver.pushes[-1]["messages"]["flowId"] == 81


# --- tickets --------------------------------------------------------------------------------


async def test_ticket_replies_list_external_and_internal(sim: UdeskSimulator, udesk: Udesk) -> None:
    sim.set_agent(7, "Tom")
    await udesk("POST", "/customers", {"customer": {"nick_name": "Ann", "open_api_token": "c1"}})
    ticket = {
        "subject": "Refund",
        "content": "Please",
        "type": "customer_token",
        "type_content": "c1",
    }
    created = await udesk("POST", "/tickets", {"ticket": ticket})
    ticket_id = created["ticket_id"]

    await sim.ticket_reply(ticket_id, "We are on it")
    await sim.ticket_reply(ticket_id, "check the order", internal=True)
    reply = {"id": ticket_id, "content_type": "text", "new_reply": "Thanks"}
    assert (await udesk("POST", "/tickets/customer_reply", reply))["code"] == 1000

    replies = (await udesk("GET", f"/tickets/{ticket_id}/replies"))["replies"]
    assert [(r["function_type"], r["author"]["user_type"]) for r in replies] == [
        ("external", "agent"),
        ("internal", "agent"),
        ("external", "customer"),
    ]
    sim.set_ticket_status(ticket_id, "resolved")
    detail = await udesk("GET", "/tickets/detail", params={"id": ticket_id})
    assert detail["ticket"]["status_en"] == "resolved"


# --- control API ----------------------------------------------------------------------------


async def test_control_api_scripts_the_simulator(
    sim: UdeskSimulator, client: TestClient[Any, Any], udesk: Udesk, receiver: Receiver
) -> None:
    async with client.post("/_sim/agents", json={"agent_id": 7, "name": "Tom"}) as response:
        assert response.status == 200
    assert (await new_session(udesk, "c1"))["code"] == 1000
    async with client.post(
        "/_sim/agent_reply", json={"customer_token": "c1", "content": "hi"}
    ) as response:
        message_id = (await response.json())["message_id"]
    assert receiver.pushes[-1]["messages"][0]["message_id"] == message_id

    async with client.post("/_sim/agent_reply", json={"customer_token": "nobody"}) as response:
        assert response.status == 400
    async with client.post("/_sim/close", json={"customer_token": "nobody"}) as response:
        assert response.status == 404
    async with client.get("/_sim/state") as response:
        state = await response.json()
    assert [s["customer_token"] for s in state["sessions"]] == ["c1"]
    assert sim.errors == []
