"""/open_api_v1/im/...: the IM Open API as im-open-api.txt describes it."""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bridge.udesk.errors import (
    CODE_NOT_ACTIVATED,
    CODE_OK,
    CODE_PREVIEW_SESSION_GONE,
    CODE_QUOTA_EXCEEDED,
    CODE_SESSION_GONE,
)

from . import shapes
from .im import MESSAGE_ID_RE, QUEUED, ROBOT, UROBOT
from .params import CODE_BAD_PARAMS, CODE_MISSING, params, require, to_int
from .shapes import udesk, udesk_error
from .state import Preview, PreviewViolation, SimError, SurveyRecord

if TYPE_CHECKING:
    from .simulator import UdeskSimulator

CODE_NOT_FOUND = 2005  # "The resource was not found" (customers error table)
CODE_NO_GROUP = 11012  # documented for GET /im/agent_status with an unknown group
THANKS = "Thank you for your feedback"


class ImApi:
    def __init__(self, sim: UdeskSimulator) -> None:
        self.sim = sim
        self.im = sim.im

    def routes(self) -> list[web.RouteDef]:
        sid = r"{session_id:\d+}"
        return [
            web.post("/im/sessions", self.create_session),
            # Fixed paths before /im/sessions/{id}, which would otherwise swallow them.
            web.delete("/im/sessions/close_queue", self.close_queue),
            web.delete("/im/sessions/destroy_session", self.destroy_session),
            web.post("/im/sessions/survey", self.survey),
            web.post("/im/sessions/robot_survey", self.robot_survey),
            web.post("/im/sessions/transfer_survey", self.transfer_survey),
            web.delete(f"/im/sessions/{sid}", self.close_session),
            web.put(f"/im/sessions/{sid}/message_preview", self.preview),
            web.post("/im/messages", self.message),
            web.get("/im/messages/unread_customer_offline", self.unread),
            web.post("/im/messages/read_messages", self.read_messages),
            web.post("/im/messages/answer_survey", self.answer_survey),
            web.post("/im/messages/flow", self.flow),
            web.post("/im/messages/hit", self.hit),
            # Robot Q&A usefulness evaluation: the docs give its parameters but no path;
            # this one is the simulator's choice.
            web.post("/im/robot/useful", self.robot_useful),
            web.post("/im/customer_online_state", self.online_state),
            web.get("/im/queue_status", self.queue_status),
            web.get("/im/customer_status", self.customer_status),
            web.get("/im/agent_status", self.agent_status),
            web.get("/im/urobots", self.urobots),
            web.get("/im/im_queues", self.abandoned_queues),
            web.get("/im/im_sensitive_words", self.sensitive_words),
        ]

    # --- sessions -------------------------------------------------------------------------

    async def create_session(self, request: web.Request) -> web.Response:
        p = params(request)
        require(p, "customer_token")
        token = str(p["customer_token"])
        agent_id, group_id = to_int(p.get("agent_id")), to_int(p.get("group_id"))
        assign_type = p.get("assign_type") or "robot"
        if agent_id is not None or group_id is not None:
            assign_type = "agent"  # either one "ignores assign_type"
        self.im.ensure_customer(token)  # an unknown token becomes "API Anonymous User"
        if assign_type == "robot":
            return udesk(
                CODE_OK,
                shapes.MSG_OK,
                assign_type="robot",
                assign_info=dict(shapes.ROBOT_ASSIGN_INFO),
            )
        if assign_type == "urobot":
            return self._urobot_session(token, p)
        if assign_type != "agent":
            return udesk_error(CODE_BAD_PARAMS, "Incorrect parameter format", "assign_type")
        code, message, info, started = self.im.request_agent(token, agent_id, group_id)
        if started is not None:
            self.im.announce(started)  # pushed after (or while) this answer goes out
        return udesk(code, message, assign_type="agent", assign_info=info)

    def _urobot_session(self, token: str, p: dict[str, Any]) -> web.Response:
        require(p, "robot_id", "scene_id")  # "required" when assign_type is urobot
        robot_id, scene_id = to_int(p["robot_id"]), to_int(p["scene_id"])
        robot = next((r for r in self.sim.urobots if r["id"] == robot_id), None)
        if robot is None or all(s["id"] != scene_id for s in robot["scene_list"]):
            return udesk_error(CODE_NOT_FOUND, "The resource was not found", "robot or scene")
        customer = self.im.ensure_customer(token)
        # Each urobot request starts a new robot conversation with its own sessionId.
        customer.urobot_session_id = self.sim.next_id("urobot_session")
        info = shapes.urobot_assign_info(
            customer.urobot_session_id, self.sim.next_id("urobot_log"), robot
        )
        return udesk(CODE_OK, shapes.MSG_OK, assign_type="urobot", assign_info=info)

    async def close_session(self, request: web.Request) -> web.Response:
        session = self.sim.sessions.get(int(request.match_info["session_id"]))
        if session is None or session.status != "open":
            return udesk(CODE_SESSION_GONE, shapes.MSG_SESSION_GONE)
        # Closed by the client itself: no close push comes back for it.
        self.im.end(session, "client")
        self.im.slot_freed()
        return udesk(CODE_OK)

    async def close_queue(self, request: web.Request) -> web.Response:
        p = params(request)
        require(p, "customer_token", "queue")
        if not self.im.leave_queue(str(p["customer_token"]), str(p["queue"])):
            return udesk(CODE_SESSION_GONE, "Not in queue")
        return udesk(CODE_OK)

    async def destroy_session(self, request: web.Request) -> web.Response:
        p = params(request)
        require(p, "start_time", "end_time")
        try:
            start, end = (
                datetime.strptime(str(p[k]), "%Y-%m-%d %H:%M:%S").replace(tzinfo=self.sim.tz)
                for k in ("start_time", "end_time")
            )
        except ValueError:
            return udesk_error(CODE_BAD_PARAMS, "Incorrect parameter format", "time format")
        self.im.destroy_sessions(start, end, to_int(p.get("customer_id")))
        return udesk(CODE_OK)

    async def preview(self, request: web.Request) -> web.Response:
        session_id = int(request.match_info["session_id"])
        p = params(request)
        content = p.get("content")
        if not isinstance(content, str):
            return udesk_error(CODE_BAD_PARAMS, shapes.MSG_MISSING, "content")
        now = time.monotonic()
        recent = [
            x for x in self.sim.previews if x.session_id == session_id and now - x.monotonic < 1.0
        ]
        too_fast = len(recent) >= 3  # "3 times per session_id per second"
        if too_fast:
            self.sim.preview_rate_violations.append(
                PreviewViolation(session_id, now, len(recent) + 1)
            )
        session = self.sim.sessions.get(session_id)
        code, message = CODE_OK, None
        if not self.sim.preview_activated:
            code, message = CODE_NOT_ACTIVATED, "Interface not activated."
        elif session is None or session.status != "open":
            code, message = CODE_PREVIEW_SESSION_GONE, "Session not found or closed."
        elif too_fast and self.sim.preview_enforce_limit:
            code, message = CODE_QUOTA_EXCEEDED, shapes.MSG_QUOTA
        else:
            session.preview = content  # an empty string clears it
        # Every attempt is kept, refused or not: the rate is the client's to keep.
        self.sim.previews.append(Preview(session_id, content, now, self.sim.clock(), code))
        return udesk(code, message)

    # --- messages -------------------------------------------------------------------------

    async def message(self, request: web.Request) -> web.Response:
        p = params(request)
        require(p, "customer_token")
        token = str(p["customer_token"])
        sub_id = to_int(p.get("im_sub_session_id")) or ROBOT  # "0 or empty for robot"
        type_ = p.get("type") or "message"
        data = p.get("data")
        message_id = p.get("message_id")
        message_id = None if message_id in (None, "") else str(message_id)
        if message_id is None and sub_id != UROBOT:  # "Udesk robot can omit"
            require(p, "message_id")
        if message_id is not None and not MESSAGE_ID_RE.match(message_id):
            return udesk_error(
                CODE_BAD_PARAMS,
                "message_id format error",
                'only letters, digits, "_" and "-" are allowed',
            )
        if not isinstance(data, dict) or "content" not in data:
            return udesk_error(CODE_MISSING, shapes.MSG_MISSING, "data.content")
        if type_ not in shapes.CUSTOMER_MESSAGE_TYPES or (
            sub_id in (ROBOT, UROBOT) and type_ != "message"
        ):
            return udesk_error(CODE_BAD_PARAMS, "Incorrect parameter format", f"type {type_}")
        extra = {k: p[k] for k in ("robot_id", "scene_id", "agent_id", "group_id") if k in p}
        if sub_id == UROBOT:
            require(p, "robot_id", "scene_id")
            extra["urobot_session_id"] = to_int(p.get("urobot_session_id"))
        if sub_id == QUEUED or sub_id > 0:
            self.im.ensure_customer(token)
        code, message = self.im.accept_message(token, sub_id, message_id, type_, data, extra)
        return udesk(code, message)

    async def unread(self, request: web.Request) -> web.Response:
        p = params(request)
        require(p, "im_sub_session_id", "customer_id")
        session = self.sim.sessions.get(to_int(p["im_sub_session_id"]) or 0)
        if session is None or session.customer_id != to_int(p["customer_id"]):
            return udesk(CODE_SESSION_GONE, shapes.MSG_SESSION_GONE)
        messages = [m.wire for m in self.im.unread(session.id)]
        return udesk(CODE_OK, count=len(messages), unread_messages=messages)

    async def read_messages(self, request: web.Request) -> web.Response:
        p = params(request)
        require(p, "session_id", "message_ids")
        ids = p["message_ids"]
        if isinstance(ids, str):  # the docs' curl sends ['1','2'] in the query string
            ids = [i.strip(" '\"") for i in ids.strip("[]").split(",") if i.strip()]
        wanted = {str(i) for i in ids}
        session_id = to_int(p["session_id"])
        for m in self.sim.agent_messages:
            if m.session_id == session_id and m.message_id in wanted:
                m.read = True
        return udesk(CODE_OK)

    # --- robots ---------------------------------------------------------------------------

    async def flow(self, request: web.Request) -> web.Response:
        p = params(request)
        require(p, "customer_token", "flow_id", "robot_id", "scene_id")
        try:
            flow = self.im.flow(to_int(p["flow_id"]) or 0)
        except SimError:
            return udesk_error(CODE_NOT_FOUND, "The resource was not found", "flow_id")
        self.im.submit_urobot(
            str(p["customer_token"]),
            flow.answer,
            hit_question=flow.title,
            flow_id=flow.id,
            robot_id=to_int(p["robot_id"]),
        )
        return udesk(CODE_OK)

    async def urobots(self, request: web.Request) -> web.Response:
        return udesk(CODE_OK, shapes.MSG_OK, urobot_list=self.sim.urobots)

    # --- evaluations and statistics -------------------------------------------------------

    def _record(self, kind: str, p: dict[str, Any]) -> None:
        target = self.sim.hits if kind == "hit" else self.sim.surveys
        target.append(SurveyRecord(kind, p, self.sim.clock()))

    async def survey(self, request: web.Request) -> web.Response:
        p = params(request)
        require(p, "im_sub_session_id", "option_id")
        if self.sim.sessions.get(to_int(p["im_sub_session_id"]) or 0) is None:
            return udesk(CODE_SESSION_GONE, shapes.MSG_SESSION_GONE)
        if to_int(p["option_id"]) not in shapes.survey_option_ids(self.sim.survey_show_type):
            return udesk_error(CODE_BAD_PARAMS, "Incorrect parameter format", "option_id")
        self._record("session", p)
        return udesk(CODE_OK, THANKS)

    async def robot_survey(self, request: web.Request) -> web.Response:
        p = params(request)
        require(p, "customer_token", "im_sub_session_id", "option_id", "robot_id", "scene_id")
        if to_int(p["option_id"]) not in (2, 3, 4):
            return udesk_error(CODE_BAD_PARAMS, "Incorrect parameter format", "option_id")
        self._record("robot", p)
        return udesk(CODE_OK, THANKS)

    async def answer_survey(self, request: web.Request) -> web.Response:
        p = params(request)
        require(p, "customer_token", "message_id", "im_sub_session_id", "robot_id", "scene_id")
        if to_int(p.get("option_id")) not in (None, 1, 2):
            return udesk_error(CODE_BAD_PARAMS, "Incorrect parameter format", "option_id")
        self._record("answer", p)
        return udesk(CODE_OK, THANKS)

    async def transfer_survey(self, request: web.Request) -> web.Response:
        p = params(request)
        require(p, "im_sub_session_id", "robot_id", "scene_id")
        self._record("transfer", p)
        return udesk(CODE_OK, "success")

    async def robot_useful(self, request: web.Request) -> web.Response:
        p = params(request)
        require(p, "customer_token", "message_id", "question_id")
        if not isinstance(p.get("useful"), bool) and p.get("useful") not in ("true", "false"):
            return udesk_error(CODE_MISSING, shapes.MSG_MISSING, "useful")
        self._record("robot_useful", p)
        return udesk(CODE_OK)

    async def hit(self, request: web.Request) -> web.Response:
        p = params(request)
        require(p, "customer_token", "im_sub_session_id", "message_id", "robot_id", "query_type")
        self._record("hit", p)
        return udesk(CODE_OK)

    # --- status queries -------------------------------------------------------------------

    async def online_state(self, request: web.Request) -> web.Response:
        p = params(request)
        require(p, "customer_token", "state")
        state = to_int(p["state"])
        if state not in (0, 1):
            return udesk_error(CODE_BAD_PARAMS, "Incorrect parameter format", "state")
        self.im.ensure_customer(str(p["customer_token"])).online_state = state
        return udesk(CODE_OK)

    async def queue_status(self, request: web.Request) -> web.Response:
        p = params(request)
        require(p, "customer_token")
        token = str(p["customer_token"])
        entry = self.im.queue_entry(token)
        if entry is not None:
            return udesk(CODE_OK, status="In queue", count=self.im.position(entry))
        if self.im.open_session(token) is not None:
            return udesk(CODE_OK, status="In session", count=0)
        return udesk(CODE_OK, status="Not in queue", count=0)

    async def customer_status(self, request: web.Request) -> web.Response:
        p = params(request)
        token = p.get("customer_token")
        if not token:
            # web_token / sdk_token customers do not exist in an Open API-only company.
            return udesk(CODE_OK, status_code=3, status="Invalid customer")
        token = str(token)
        if self.im.customer(token) is None:
            return udesk(CODE_OK, status_code=3, status="Invalid customer")
        if self.im.open_session(token) is not None:
            return udesk(CODE_OK, status_code=1, status="In session")
        if self.im.queue_entry(token) is not None:
            return udesk(CODE_OK, status_code=2, status="In queue")
        return udesk(CODE_OK, status_code=0, status="No session")

    async def agent_status(self, request: web.Request) -> web.Response:
        group_id = to_int(params(request).get("group_id"))
        agents = [a for a in self.sim.agents.values() if group_id is None or a.group_id == group_id]
        if group_id is not None and not agents:
            return udesk(CODE_NO_GROUP, "Group does not exist")
        return udesk(
            CODE_OK,
            agents=[
                {
                    "id": a.id,
                    "name": a.name,
                    "nick": a.nick or a.name,
                    "im_nick": a.nick or a.name,
                    "avatar": a.avatar,
                    "im_status": a.status,
                    "im_custom_status": "",
                    "im_session_num": self.im.load(a.id),
                    "im_max_join_num": a.capacity,
                }
                for a in agents
            ],
        )

    async def abandoned_queues(self, request: web.Request) -> web.Response:
        p = params(request)
        require(p, "start_time", "end_time")
        per_page = min(max(to_int(p.get("per_page")) or 30, 1), 100)
        page = max(to_int(p.get("page")) or 1, 1)
        rows = self.sim.abandoned_queues
        chunk = rows[(page - 1) * per_page : page * per_page]
        shut = [
            {
                "id": i,
                "customer_id": row["customer_id"],
                "channel": "api",
                "queue_start_time": shapes.iso(row["queue_start_time"]),
                "queue_seconds": row["queue_seconds"],
                "queue_name": row["queue_name"],
                "customer_name": {"id": row["customer_id"]},
            }
            for i, row in enumerate(chunk, start=(page - 1) * per_page + 1)
        ]
        pages = max((len(rows) + per_page - 1) // per_page, 1)
        return udesk(
            CODE_OK,
            shut_queues=shut,
            meta={"current_page": page, "total_pages": pages, "count": len(shut)},
        )

    async def sensitive_words(self, request: web.Request) -> web.Response:
        return udesk(CODE_OK, customer_words_string="", customer_is_open=0)
