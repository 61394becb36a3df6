"""/_sim/...: the simulator's own JSON control API, the HTTP twin of its Python controls, so
another process (a browser console, a test driving a subprocess) can script it. Unsigned."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .state import SimError

if TYPE_CHECKING:
    from .simulator import UdeskSimulator

Handler = Any


def to_jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_default))


def _default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, bytes):
        return {"bytes": len(value)}
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def reply(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status, dumps=lambda v: json.dumps(v, default=_default))


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except SimError as exc:
        return reply({"error": str(exc)}, 404)
    except (KeyError, TypeError, ValueError) as exc:
        return reply({"error": f"bad request: {exc!r}"}, 400)
    return response


class ControlApi:
    def __init__(self, sim: UdeskSimulator) -> None:
        self.sim = sim

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_errors])
        app.add_routes(
            [
                web.get("/state", self.state),
                web.post("/config", self.config),
                web.get("/calls", self.calls),
                web.get("/messages", self.messages),
                web.get("/previews", self.previews),
                web.get("/push_log", self.push_log),
                web.get("/surveys", self.surveys),
                web.get("/agents", self.agents),
                web.post("/agents", self.set_agent),
                web.post("/agent_reply", self.agent_reply),
                web.post("/robot_reply", self.robot_reply),
                web.post("/urobot_reply", self.urobot_reply),
                web.post("/transfer", self.transfer),
                web.post("/close", self.close),
                web.post("/advance_queue", self.advance_queue),
                web.get("/faults", self.faults),
                web.post("/faults", self.inject_fault),
                web.delete("/faults", self.clear_faults),
                web.post(r"/tickets/{ticket_id:\d+}/reply", self.ticket_reply),
                web.post(r"/tickets/{ticket_id:\d+}/status", self.ticket_status),
                web.post("/field_push", self.field_push),
                web.post("/read_status", self.read_status),
                web.post("/push", self.raw_push),
                web.post("/drain", self.drain),
                web.get(r"/files/{attachment_id:\d+}/{name}", self.file),
            ]
        )
        return app

    async def _json(self, request: web.Request) -> dict[str, Any]:
        data: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            posted = await request.json()
            if not isinstance(posted, dict):
                raise ValueError("expected a JSON object")
            data.update(posted)
        return data

    # --- reading ----------------------------------------------------------------------------

    async def state(self, request: web.Request) -> web.Response:
        return reply(self.sim.snapshot())

    async def calls(self, request: web.Request) -> web.Response:
        prefix = request.query.get("path_prefix", "")
        since = int(request.query.get("since", 0))
        rows = [
            {"index": i, **dataclasses.asdict(c)}
            for i, c in enumerate(self.sim.calls)
            if i >= since and c.path.startswith(prefix)
        ]
        return reply(rows)

    async def messages(self, request: web.Request) -> web.Response:
        token = request.query.get("customer_token")
        rows = self.sim.messages_for(token) if token else self.sim.customer_messages
        return reply({"messages": rows, "duplicates": self.sim.duplicate_messages})

    async def previews(self, request: web.Request) -> web.Response:
        return reply(
            {"previews": self.sim.previews, "violations": self.sim.preview_rate_violations}
        )

    async def push_log(self, request: web.Request) -> web.Response:
        return reply([{**dataclasses.asdict(p), "ok": p.ok} for p in self.sim.push_log])

    async def surveys(self, request: web.Request) -> web.Response:
        return reply({"surveys": self.sim.surveys, "hits": self.sim.hits})

    async def agents(self, request: web.Request) -> web.Response:
        return reply(list(self.sim.agents.values()))

    async def faults(self, request: web.Request) -> web.Response:
        return reply(self.sim.faults.faults)

    async def file(self, request: web.Request) -> web.Response:
        att = self.sim.attachments.get(int(request.match_info["attachment_id"]))
        if att is None:
            raise SimError("no such attachment")
        return web.Response(body=att.data, content_type=att.content_type)

    # --- scripting --------------------------------------------------------------------------

    async def config(self, request: web.Request) -> web.Response:
        self.sim.configure(**await self._json(request))
        return reply(self.sim.snapshot()["config"])

    async def set_agent(self, request: web.Request) -> web.Response:
        d = await self._json(request)
        agent = self.sim.set_agent(
            int(d["agent_id"]),
            str(d.get("name") or f"Agent {d['agent_id']}"),
            online=bool(d.get("online", True)),
            capacity=int(d.get("capacity", 3)),
            group_id=None if d.get("group_id") is None else int(d["group_id"]),
            avatar=str(d.get("avatar", "")),
            status=d.get("status"),
        )
        return reply(agent)

    async def agent_reply(self, request: web.Request) -> web.Response:
        d = await self._json(request)
        message_id = await self.sim.agent_reply(
            str(d["customer_token"]),
            str(d["content"]),
            type=str(d.get("type", "message")),
            **dict(d.get("data") or {}),
        )
        return reply({"message_id": message_id})

    async def robot_reply(self, request: web.Request) -> web.Response:
        d = await self._json(request)
        message_id = await self.sim.robot_reply(
            str(d["customer_token"]),
            str(d["answer"]),
            question=str(d.get("question", "")),
            question_id=d.get("question_id"),
        )
        return reply({"message_id": message_id})

    async def urobot_reply(self, request: web.Request) -> web.Response:
        d = await self._json(request)
        log_id = await self.sim.urobot_reply(
            str(d["customer_token"]),
            str(d["ans_content"]),
            ans_type=int(d.get("ans_type", 1)),
            hit_question=str(d.get("hit_question", "")),
            suggest=d.get("suggest"),
            flow_id=d.get("flow_id"),
        )
        return reply({"log_id": log_id})

    async def transfer(self, request: web.Request) -> web.Response:
        d = await self._json(request)
        session = await self.sim.transfer(str(d["customer_token"]), int(d["to_agent_id"]))
        return reply(session)

    async def close(self, request: web.Request) -> web.Response:
        d = await self._json(request)
        session = await self.sim.close_session(
            str(d["customer_token"]),
            survey=bool(d.get("survey", True)),
            close_type=str(d.get("close_type", "normal")),
        )
        return reply(session)

    async def advance_queue(self, request: web.Request) -> web.Response:
        return reply(await self.sim.advance_queue())

    async def inject_fault(self, request: web.Request) -> web.Response:
        d = await self._json(request)
        fault = self.sim.inject_fault(
            path_prefix=str(d["path_prefix"]),
            kind=str(d["kind"]),
            count=None if d.get("count") is None else int(d["count"]),
            duration=None if d.get("duration") is None else float(d["duration"]),
            delay=None if d.get("delay") is None else float(d["delay"]),
            method=d.get("method"),
        )
        return reply(fault)

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.sim.clear_faults()
        return reply({"ok": True})

    async def ticket_reply(self, request: web.Request) -> web.Response:
        d = await self._json(request)
        result = await self.sim.ticket_reply(
            int(request.match_info["ticket_id"]),
            str(d["content"]),
            internal=bool(d.get("internal", False)),
            agent_id=None if d.get("agent_id") is None else int(d["agent_id"]),
        )
        return reply(result)

    async def ticket_status(self, request: web.Request) -> web.Response:
        d = await self._json(request)
        return reply(self.sim.set_ticket_status(int(request.match_info["ticket_id"]), d["status"]))

    async def field_push(self, request: web.Request) -> web.Response:
        d = await self._json(request)
        attempt = await self.sim.field_push(str(d["url"]), d["payload"])
        return reply({**dataclasses.asdict(attempt), "ok": attempt.ok})

    async def read_status(self, request: web.Request) -> web.Response:
        d = await self._json(request)
        attempt = await self.sim.push_read_status(int(d["session_id"]), list(d["message_ids"]))
        return reply({**dataclasses.asdict(attempt), "ok": attempt.ok})

    async def raw_push(self, request: web.Request) -> web.Response:
        d = await self._json(request)
        attempt = await self.sim.push(d["body"])
        return reply({**dataclasses.asdict(attempt), "ok": attempt.ok})

    async def drain(self, request: web.Request) -> web.Response:
        await self.sim.drain()
        return reply({"ok": True})
