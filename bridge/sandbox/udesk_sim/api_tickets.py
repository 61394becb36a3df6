"""/open_api_v1/tickets...: the ticket calls a bridge needs (tickets-api.txt)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from bridge.udesk.errors import CODE_OK

from . import shapes
from .params import Answer, body, params, to_int
from .shapes import udesk
from .state import Attachment, SimError, Ticket, TicketReply

if TYPE_CHECKING:
    from .simulator import UdeskSimulator

STATUSES = {1: "open", 2: "resolved", 3: "closed", 4: "solving"}
PRIORITIES = {1: "urgency", 2: "high", 3: "medium", 4: "low"}
MAX_FILE = 20 * 1024 * 1024
MAX_ATTACHMENTS = 10
CUSTOMER_LOOKUP = {"email", "cellphone", "customer_token", "customer_id"}


def _fail(message: str) -> Answer:
    # Every ticket error in the vendor's table is code 2000 with its own message.
    return Answer(udesk(2000, message))


class TicketsApi:
    def __init__(self, sim: UdeskSimulator) -> None:
        self.sim = sim

    def routes(self) -> list[web.RouteDef]:
        tid = r"{ticket_id:\d+}"
        return [
            web.post("/tickets", self.create),
            web.get("/tickets/detail", self.detail),
            web.delete("/tickets/destroy_ticket", self.destroy),
            web.post("/tickets/upload_file", self.upload),
            web.post("/tickets/upload_file_for_reply", self.upload),
            web.post("/tickets/agent_reply", self.agent_reply),
            web.post("/tickets/customer_reply", self.customer_reply),
            web.put(f"/tickets/{tid}", self.update),
            web.get(f"/tickets/{tid}/replies", self.replies),
        ]

    # --- controls (also used by the simulator's Python API) -------------------------------

    def ticket(self, ticket_id: int) -> Ticket:
        ticket = self.sim.tickets.get(ticket_id)
        if ticket is None:
            raise SimError(f"unknown ticket {ticket_id}")
        return ticket

    def add_agent_reply(
        self,
        ticket_id: int,
        content: str,
        *,
        internal: bool = False,
        agent_id: int | None = None,
        attachments: list[dict[str, Any]] | None = None,
    ) -> TicketReply:
        ticket = self.ticket(ticket_id)
        agent = self.sim.agents.get(agent_id) if agent_id is not None else None
        if agent is None and agent_id is None and self.sim.agents:
            agent = next(iter(self.sim.agents.values()))
        aid = agent.id if agent else (agent_id or 0)
        author = {
            "id": aid,
            "user_type": "agent",
            "email": f"agent{aid}@example.com",
            "avatar": agent.avatar if agent else "",
            "nick_name": (agent.nick or agent.name) if agent else f"Agent {aid}",
        }
        function_type = "internal" if internal else "external"
        return self._add_reply(ticket, content, function_type, author, attachments or [])

    def set_status(self, ticket_id: int, status: str | int) -> Ticket:
        ticket = self.ticket(ticket_id)
        by_name = {v: k for k, v in STATUSES.items()}
        status_id = by_name.get(status) if isinstance(status, str) else status
        if status_id not in STATUSES:
            raise ValueError(f"unknown ticket status {status!r}; use one of {list(by_name)}")
        ticket.status_id = status_id
        ticket.updated_at = self.sim.im.now()
        return ticket

    # --- handlers -------------------------------------------------------------------------

    async def create(self, request: web.Request) -> web.Response:
        payload = body(request)
        data = payload.get("ticket") if isinstance(payload, dict) else None
        if not isinstance(data, dict) or not data:
            raise _fail("Sorry, the object ticket cannot be empty")
        if not data.get("subject"):
            raise _fail("Sorry, ticket subject cannot be empty")
        if not data.get("content"):
            raise _fail("Sorry, ticket description cannot be empty")
        customer_id = None
        if data.get("type") or data.get("type_content"):
            customer_id = self._customer_id(str(data.get("type")), str(data.get("type_content")))
        status_id = to_int(data.get("status_id")) or 1
        if status_id not in STATUSES:
            raise _fail("Status error")
        names = {v: k for k, v in PRIORITIES.items()}
        now = self.sim.im.now()
        ticket = Ticket(
            id=self.sim.next_id("ticket"),
            subject=str(data["subject"]),
            content=str(data["content"]),
            customer_id=customer_id,
            created_at=now,
            updated_at=now,
            status_id=status_id,
            priority_id=names.get(str(data.get("priority")), 3),
            tags=str(data.get("tags") or ""),
            custom_fields=dict(data.get("ticket_field") or {}),
        )
        self.sim.tickets[ticket.id] = ticket
        return udesk(CODE_OK, "ticket create success", ticket_id=ticket.id)

    async def detail(self, request: web.Request) -> web.Response:
        ticket = self._by_id_or_num(params(request))
        return udesk(CODE_OK, "success", ticket=self._wire(ticket))

    async def destroy(self, request: web.Request) -> web.Response:
        ticket = self._by_id_or_num(params(request))
        del self.sim.tickets[ticket.id]
        return udesk(CODE_OK, "success")

    async def update(self, request: web.Request) -> web.Response:
        ticket = self._existing(int(request.match_info["ticket_id"]))
        payload = body(request)
        data = payload.get("ticket") if isinstance(payload, dict) else None
        if not isinstance(data, dict) or not data:
            raise _fail("Sorry, the object ticket cannot be empty")
        if not data.get("subject"):  # "subject ... Required: Yes" for updates too
            raise _fail("Sorry, ticket subject cannot be empty")
        status_id = to_int(data.get("status_id"))
        if status_id is not None and status_id not in STATUSES:
            raise _fail("Status error")
        priority_id = to_int(data.get("priority_id"))
        if priority_id is not None and priority_id not in PRIORITIES:
            raise _fail("Priority error")
        if isinstance(payload, dict) and payload.get("customer_id_type"):
            ticket.customer_id = self._customer_id(
                str(payload["customer_id_type"]), str(payload.get("customer_id_value"))
            )
        ticket.subject = str(data["subject"])
        ticket.content = str(data.get("content", ticket.content))
        ticket.status_id = status_id or ticket.status_id
        ticket.priority_id = priority_id or ticket.priority_id
        if "tags" in data:
            ticket.tags = str(data["tags"] or "")
        ticket.custom_fields.update(data.get("custom_fields") or {})
        ticket.updated_at = self.sim.im.now()
        return udesk(CODE_OK, ticket=self._wire(ticket))

    async def replies(self, request: web.Request) -> web.Response:
        ticket = self._existing(int(request.match_info["ticket_id"]))
        p = params(request)
        # "If per_page is less than 20, it will still display 20 items."
        per_page = min(max(to_int(p.get("per_page")) or 20, 20), 100)
        page = max(to_int(p.get("page")) or 1, 1)
        rows = ticket.replies[(page - 1) * per_page : page * per_page]
        meta = {
            "current_page": page,
            "total_pages": max((len(ticket.replies) + per_page - 1) // per_page, 1),
            "total_count": len(ticket.replies),
        }
        return udesk(CODE_OK, replies=[_reply_wire(r) for r in rows], meta=meta)

    async def upload(self, request: web.Request) -> web.Response:
        p = params(request)
        ticket_id = to_int(p.get("ticket_id"))
        if ticket_id is None:
            raise _fail("ticket_id is a required field and cannot be empty")
        if not p.get("file_name"):
            raise _fail("file_name is a required field and cannot be empty")
        ticket = self.sim.tickets.get(ticket_id)
        if ticket is None:
            raise _fail("Sorry, the ticket does not exist")
        data = await request.read()
        if not data:
            raise _fail("Sorry, you have not uploaded attachments")
        if len(data) > MAX_FILE:
            raise _fail("Sorry, the file you uploaded exceeds 20mb")
        if len(ticket.attachment_ids) >= MAX_ATTACHMENTS:
            raise _fail("A ticket can upload up to 10 attachments")
        for_reply = request.path.endswith("_for_reply")
        attachment_id = self.sim.next_id("attachment")
        name = str(p["file_name"])
        # Served by the control app, so a client can really download what it uploaded.
        url = f"{request.url.origin()}/_sim/files/{attachment_id}/{quote(name)}"
        self.sim.attachments[attachment_id] = Attachment(
            id=attachment_id,
            ticket_id=ticket_id,
            file_name=name,
            content_type=str(p.get("type") or "application/octet-stream"),
            url=url,
            for_reply=for_reply,
            data=data,
        )
        ticket.attachment_ids.append(attachment_id)
        message: dict[str, Any] = {
            "msg": "upload Success",
            "url": url,
            "attachment_id": attachment_id,
        }
        if for_reply:
            message["attachable_type"] = "Reply"
        return udesk(CODE_OK, message=message)

    async def agent_reply(self, request: web.Request) -> web.Response:
        p = params(request)
        ticket = self._by_id_or_num(p)
        if not p.get("new_reply"):
            raise _fail("Sorry, reply content new_reply is required and cannot be empty")
        if p.get("function_type") not in ("internal", "external"):
            raise _fail("Sorry, reply type function_type is required and cannot be empty")
        if p.get("agent_id") in (None, ""):
            raise _fail("Sorry, customer service id is required and cannot be empty")
        try:
            agent_id = int(p["agent_id"])
        except (TypeError, ValueError):
            raise _fail("Sorry, the value of customer service id should be an integer") from None
        if agent_id not in self.sim.agents:
            raise _fail("Customer service does not exist")
        for key in ("cc", "cc_customer"):
            if key in p and not isinstance(p[key], list):
                raise _fail(f"{key} is not an array format")
        reply = self.add_agent_reply(
            ticket.id,
            str(p["new_reply"]),
            internal=p["function_type"] == "internal",
            agent_id=agent_id,
            attachments=self._reply_attachments(ticket, p),
        )
        if p.get("cc"):
            reply.cc = ", ".join(str(x) for x in p["cc"])
        return udesk(CODE_OK, data={"type": "reply", "data": _reply_wire(reply)})

    async def customer_reply(self, request: web.Request) -> web.Response:
        p = params(request)
        ticket = self._by_id_or_num(p)
        if not p.get("new_reply"):
            raise _fail("Sorry, reply content new_reply is required and cannot be empty")
        if p.get("content_type") not in ("html", "text"):
            raise _fail("Sorry, reply type function_type is required and cannot be empty")
        customer = self.sim.customers.get(ticket.customer_id or 0)
        if customer is None:
            raise _fail("Sorry, the customer of the ticket does not exist")
        author = {
            "id": customer.id,
            "user_type": "customer",
            "email": customer.fields.get("email"),
            "avatar": None,
            "nick_name": customer.fields.get("nick_name"),
        }
        reply = self._add_reply(
            ticket,
            str(p["new_reply"]),
            "external",
            author,
            self._reply_attachments(ticket, p),
            content_format=str(p["content_type"]),
        )
        return udesk(CODE_OK, data={"type": "reply", "data": _reply_wire(reply)})

    # --- helpers --------------------------------------------------------------------------

    def _add_reply(
        self,
        ticket: Ticket,
        content: str,
        function_type: str,
        author: dict[str, Any],
        attachments: list[dict[str, Any]],
        content_format: str = "html",
    ) -> TicketReply:
        reply = TicketReply(
            id=self.sim.next_id("reply"),
            content=content,
            content_format=content_format,
            function_type=function_type,
            author=author,
            created_at=self.sim.im.now(),
            attachments=attachments,
        )
        ticket.replies.append(reply)
        ticket.updated_at = reply.created_at
        return reply

    def _reply_attachments(self, ticket: Ticket, p: dict[str, Any]) -> list[dict[str, Any]]:
        # Reply attachments must come from /tickets/upload_file_for_reply ("Ticket Reply
        # Upload Attachment"), not from /tickets/upload_file; both errors are the vendor's.
        wanted = p.get("attachment_ids") or []
        reply_uploads = [
            a for a in self.sim.attachments.values() if a.ticket_id == ticket.id and a.for_reply
        ]
        if wanted and not reply_uploads:
            raise _fail(f"Sorry, there is no attachment associated with the ticket <{ticket.id}>")
        result = []
        for raw in wanted:
            att = self.sim.attachments.get(to_int(raw) or 0)
            if att is None or att.ticket_id != ticket.id or not att.for_reply:
                raise _fail(f"The attachment with id <{raw}> is not found")
            result.append({"url": att.url, "file_name": att.file_name, "file_size": len(att.data)})
        return result

    def _existing(self, ticket_id: int) -> Ticket:
        ticket = self.sim.tickets.get(ticket_id)
        if ticket is None:
            raise _fail("Sorry, the resource does not exist")
        return ticket

    def _by_id_or_num(self, p: dict[str, Any]) -> Ticket:
        has_id, has_num = p.get("id") not in (None, ""), p.get("num") not in (None, "")
        if has_id and has_num:
            raise _fail("Sorry, id and num cannot be passed at the same time")
        if not (has_id or has_num):
            raise _fail("Sorry, you must pass id and num, and cannot be empty")
        ticket_id = to_int(p["id"]) if has_id else to_int(str(p["num"]).lstrip("#"))
        return self._existing(ticket_id or 0)

    def _customer_id(self, kind: str, content: str) -> int:
        if kind not in CUSTOMER_LOOKUP:
            raise _fail("Sorry, no such customer. Please create a customer first")
        for c in self.sim.customers.values():
            if (
                (kind == "customer_id" and str(c.id) == content)
                or (kind == "customer_token" and c.open_api_token == content)
                or (kind == "email" and c.fields.get("email") == content)
                or (
                    kind == "cellphone"
                    and any(p["content"] == content for p in c.fields["cellphones"])
                )
            ):
                return c.id
        raise _fail("Sorry, no such customer. Please create a customer first")

    def _wire(self, t: Ticket) -> dict[str, Any]:
        customer = self.sim.customers.get(t.customer_id or 0)
        phones = customer.fields["cellphones"] if customer else []
        agent_replies = [r for r in t.replies if r.author.get("user_type") == "agent"]
        customer_replies = [r for r in t.replies if r.author.get("user_type") == "customer"]
        return {
            "id": t.id,
            "field_num": f"#{t.id}",
            "subject": t.subject,
            "content": t.content,
            "content_type": "html",
            "user_id": t.customer_id,
            "customer_id": t.customer_id,
            "user_name": customer.fields["nick_name"] if customer else None,
            "user_email": customer.fields["email"] if customer else None,
            "user_cellphone": phones[0]["content"] if phones else None,
            "priority": PRIORITIES[t.priority_id],
            "priority_id": t.priority_id,
            "status": STATUSES[t.status_id],
            "status_en": STATUSES[t.status_id],
            "status_id": t.status_id,
            "platform": "api",
            "platform_name": "api",
            "custom_fields": t.custom_fields,
            "tags": t.tags,
            "attachments": [
                {"name": a.file_name, "url": a.url}
                for a in (self.sim.attachments.get(i) for i in t.attachment_ids)
                if a is not None and not a.for_reply
            ],
            "created_at": shapes.iso(t.created_at),
            "updated_at": shapes.iso(t.updated_at),
            "replied_at": shapes.iso(t.replies[-1].created_at) if t.replies else None,
            "agent_replied_at": shapes.iso(agent_replies[-1].created_at) if agent_replies else None,
            "customer_replied_at": (
                shapes.iso(customer_replies[-1].created_at) if customer_replies else None
            ),
        }


def _reply_wire(r: TicketReply) -> dict[str, Any]:
    return {
        "id": r.id,
        "content": r.content,
        "content_format": r.content_format,
        "created_at": shapes.iso(r.created_at),
        "function_type": r.function_type,
        "cc": r.cc,
        "author": r.author,
        "attachments": r.attachments,
    }
