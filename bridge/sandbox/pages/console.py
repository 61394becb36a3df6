"""The agent console: a minimal Udesk IM workbench, served by the Udesk simulator's app.

The page polls ``GET /sandbox/console/state`` once a second and acts through the
simulator's own control API (``/_sim/agents``, ``/_sim/agent_reply``, ``/_sim/close``, ...),
so everything it does is what a test could do too.  The only things added here are the
state digest (one request instead of six), image uploads for agent replies, and the bridge's
routing rule per session (read from the bridge's database through ``bridge_sessions``).
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from bridge.sandbox.udesk_sim import UdeskSimulator, shapes
from bridge.sandbox.udesk_sim.state import PushAttempt

from .common import add_static, render

BridgeSessions = Callable[[], Awaitable[list[dict[str, Any]]]]

MAX_UPLOAD = 10 * 1024 * 1024
SHOWN_PUSHES = {"agent", "robot", "urobot"}


@dataclass
class Upload:
    name: str
    content_type: str
    data: bytes


def _survey_labels() -> dict[int, str]:
    """Option id → its text, for every survey style the simulator offers."""
    labels: dict[int, str] = {}
    for show_type in shapes.SHOW_TYPES:
        options = shapes.survey_options(show_type)
        for option in options[show_type]["options"] + options["options"]:
            labels[int(option["id"])] = str(option["text"])
    return labels


class Console:
    def __init__(self, sim: UdeskSimulator, bridge_sessions: BridgeSessions | None) -> None:
        self.sim = sim
        self.bridge_sessions = bridge_sessions
        self.uploads: dict[int, Upload] = {}
        self._upload_ids = itertools.count(1)
        self.survey_labels = _survey_labels()

    # --- routes ---------------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.Response:
        return render("console.html", title="Udesk IM workbench (sandbox)")

    async def state(self, request: web.Request) -> web.Response:
        bridge = await self.bridge_sessions() if self.bridge_sessions else []
        token = request.query.get("token") or None
        body: dict[str, Any] = {
            "agents": self._agents(),
            "queue": self._queue(),
            "conversations": self._conversations(bridge),
            "selected": self._selected(token, bridge) if token else None,
            "survey_show_type": self.sim.survey_show_type,
            "auto_assign": self.sim.auto_assign,
        }
        return web.json_response(body)

    async def upload(self, request: web.Request) -> web.Response:
        """Keep an agent's attachment and answer the URL to put in the reply, the way
        Udesk's workbench uploads a file before sending its link."""
        reader = await request.multipart()
        part = await reader.next()
        if part is None or not hasattr(part, "read"):
            raise web.HTTPBadRequest(text="expected a multipart file field")
        data = await part.read(decode=False)  # type: ignore[union-attr]
        if len(data) > MAX_UPLOAD:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_UPLOAD, actual_size=len(data))
        name = getattr(part, "filename", None) or "upload.bin"
        content_type = part.headers.get("Content-Type", "application/octet-stream")
        upload_id = next(self._upload_ids)
        self.uploads[upload_id] = Upload(name, content_type, bytes(data))
        url = f"{request.url.origin()}/sandbox/uploads/{upload_id}/{quote(name)}"
        return web.json_response({"url": url, "content_type": content_type, "filename": name})

    async def uploaded(self, request: web.Request) -> web.Response:
        upload = self.uploads.get(int(request.match_info["upload_id"]))
        if upload is None:
            raise web.HTTPNotFound()
        return web.Response(body=upload.data, content_type=upload.content_type)

    # --- the digest -----------------------------------------------------------------------

    def _agents(self) -> list[dict[str, Any]]:
        return [
            {
                "id": a.id,
                "name": a.name,
                "status": a.status,
                "capacity": a.capacity,
                "group_id": a.group_id,
                "load": self.sim.im.load(a.id),
            }
            for a in self.sim.agents.values()
        ]

    def _name(self, token: str) -> str:
        customer = self.sim.customer_by_token(token)
        return str(customer.fields.get("nick_name") or token) if customer else token

    def _queue(self) -> list[dict[str, Any]]:
        return [
            {
                "customer_token": e.customer_token,
                "name": self._name(e.customer_token),
                "queue": e.queue,
                "position": self.sim.im.position(e),
                "since": e.enqueued_at.isoformat(timespec="seconds"),
            }
            for e in self.sim.queue
        ]

    def _tokens(self) -> list[str]:
        tokens = [c.open_api_token for c in self.sim.customers.values() if c.open_api_token]
        tokens += [m.customer_token for m in self.sim.customer_messages]
        return list(dict.fromkeys(tokens))

    def _conversations(self, bridge: list[dict[str, Any]]) -> list[dict[str, Any]]:
        latest = {row["customer_token"]: row for row in bridge}  # rows are oldest first
        activity: dict[str, float] = {}
        for m in self.sim.customer_messages:
            activity[m.customer_token] = max(activity.get(m.customer_token, 0.0), m.received_at)
        for p in self.sim.push_log:
            token = _push_token(p)
            if token:
                activity[token] = max(activity.get(token, 0.0), p.time)
        rows: list[dict[str, Any]] = []
        for token in self._tokens():
            session = self.sim.session_of(token)
            entry = self.sim.im.queue_entry(token)
            row = latest.get(token) or {}
            if session is not None:
                status = "agent"
            elif entry is not None:
                status = "queued"
            elif row.get("state") in ("robot", "urobot"):
                status = str(row["state"])
            elif any(s.customer_token == token for s in self.sim.sessions.values()):
                status = "closed"
            else:
                status = "new"
            rows.append(
                {
                    "token": token,
                    "name": self._name(token),
                    "status": status,
                    "agent_name": self.sim.im.agent(session.agent_id).name if session else None,
                    "session_id": session.id if session else None,
                    "position": self.sim.im.position(entry) if entry else None,
                    "preview": session.preview if session else "",
                    "rule_name": row.get("rule_name"),
                    "assign_type": row.get("assign_type"),
                    "last_activity": activity.get(token, 0.0),
                }
            )
        rows.sort(key=lambda r: r["last_activity"], reverse=True)
        return rows

    def _selected(self, token: str, bridge: list[dict[str, Any]]) -> dict[str, Any]:
        rules = {
            row["im_sub_session_id"]: row["rule_name"]
            for row in bridge
            if row["customer_token"] == token and row["im_sub_session_id"]
        }
        latest_rule = next(
            (r["rule_name"] for r in reversed(bridge) if r["customer_token"] == token), None
        )
        sessions = [s for s in self.sim.sessions.values() if s.customer_token == token]
        session_ids = {s.id for s in sessions}
        surveys = [
            s
            for s in self.sim.surveys
            if s.kind == "session" and _int(s.params.get("im_sub_session_id")) in session_ids
        ]
        open_session = self.sim.session_of(token)
        # The live preview lasts only while a slow message is in flight (it clears when the
        # message lands), so the last one sent is kept on show too.
        previews = [p for p in self.sim.previews if p.session_id in session_ids and p.content]
        last_preview = previews[-1] if previews else None
        return {
            "token": token,
            "name": self._name(token),
            "rule_name": latest_rule,
            "sessions": [
                {
                    "id": s.id,
                    "agent_id": s.agent_id,
                    "agent_name": self.sim.im.agent(s.agent_id).name,
                    "status": s.status,
                    "close_type": s.close_type,
                    "created_at": s.created_at.isoformat(timespec="seconds"),
                    "rule_name": rules.get(s.id, latest_rule),
                }
                for s in sessions
            ],
            "open_session_id": open_session.id if open_session else None,
            "preview": open_session.preview if open_session else "",
            "last_preview": (
                {"content": last_preview.content, "time": last_preview.time}
                if last_preview
                else None
            ),
            "surveys": [
                {
                    "session_id": _int(s.params.get("im_sub_session_id")),
                    "option_id": _int(s.params.get("option_id")),
                    "label": self.survey_labels.get(_int(s.params.get("option_id")) or 0, "?"),
                    "remark": s.params.get("remark"),
                    "time": s.time,
                }
                for s in surveys
            ],
            "timeline": self._timeline(token, surveys),
        }

    def _timeline(self, token: str, surveys: list[Any]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for m in self.sim.messages_for(token):
            items.append(
                {
                    "time": m.received_at,
                    "from": "customer",
                    "type": m.type,
                    "content": str(m.data.get("content", "")),
                    "filename": m.data.get("filename"),
                    "session_id": m.session_id,
                    "via": _via(m.im_sub_session_id),
                }
            )
        for p in self.sim.push_log:
            if p.kind in SHOWN_PUSHES and _push_token(p) == token:
                items.extend(_push_items(p))
        for s in surveys:
            label = self.survey_labels.get(_int(s.params.get("option_id")) or 0, "?")
            items.append({"time": s.time, "from": "event", "type": "survey", "content": label})
        items.sort(key=lambda i: i["time"])
        return items


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _via(sub_session_id: int) -> str:
    return {0: "robot", -1: "urobot", -2: "workbench", -3: "queue"}.get(sub_session_id, "agent")


def _push_token(p: PushAttempt) -> str | None:
    body = p.body if isinstance(p.body, dict) else {}
    token = body.get("customer_token")
    return str(token) if token else None


def _push_items(p: PushAttempt) -> list[dict[str, Any]]:
    """One timeline item per message of a push, with whether the bridge took it."""
    base = {"time": p.time, "delivered": p.ok, "error": p.error or (None if p.ok else p.status)}
    messages = p.body.get("messages")
    if p.kind == "urobot" and isinstance(messages, dict):
        html = str(messages.get("ansContent") or "")
        if messages.get("flowContent"):
            html += f"<p><b>{messages.get('flowTitle') or ''}</b></p>{messages['flowContent']}"
        suggestions = [q.get("content") for q in messages.get("suggestQuestionList") or []]
        return [
            base | {"from": "urobot", "type": "rich", "content": html, "suggestions": suggestions}
        ]
    items: list[dict[str, Any]] = []
    for m in messages if isinstance(messages, list) else []:
        data = m.get("data") or {}
        if p.kind == "robot":
            titles = [q.get("question_title") for q in data.get("gus_list", [])]
            titles += [q.get("question_title") for q in data.get("relate_list", [])]
            items.append(
                base
                | {
                    "from": "robot",
                    "type": "rich",
                    "content": str(data.get("answer") or ""),
                    "suggestions": titles,
                }
            )
            continue
        kind = str(m.get("type"))
        items.append(
            base
            | {
                "from": "event" if kind in ("start_session", "transfer", "close") else "agent",
                "type": kind,
                "content": str(data.get("content") or ""),
                "filename": data.get("filename"),
                "agent_name": m.get("agent_name"),
                "session_id": m.get("im_sub_session_id"),
                "survey": bool(data.get("survey_options")),
            }
        )
    return items


def add_console_routes(
    app: web.Application, sim: UdeskSimulator, bridge_sessions: BridgeSessions | None = None
) -> Console:
    """Mount the console on the Udesk simulator's app (before it starts)."""
    console = Console(sim, bridge_sessions)

    async def home(request: web.Request) -> web.Response:
        raise web.HTTPFound("/sandbox/console")

    app.router.add_get("/sandbox", home)
    app.router.add_get("/sandbox/console", console.page)
    app.router.add_get("/sandbox/console/state", console.state)
    app.router.add_post("/sandbox/console/upload", console.upload)
    app.router.add_get("/sandbox/uploads/{upload_id:\\d+}/{name}", console.uploaded)
    add_static(app)
    return console
