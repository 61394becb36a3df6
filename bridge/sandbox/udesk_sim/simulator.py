"""UdeskSimulator: the state, the settings, the aiohttp application and the Python controls.
See the package docstring for the public API."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Coroutine, Iterator
from datetime import tzinfo
from typing import Any

from aiohttp import web

from . import shapes
from .api_tickets import TicketsApi
from .auth import Gatekeeper
from .control import ControlApi
from .faults import Fault, FaultBook
from .gateway import API_PREFIX, build_open_api
from .im import ImEngine
from .push import Pusher
from .state import (
    Agent,
    AgentMessage,
    Attachment,
    Customer,
    CustomerMessage,
    Preview,
    PreviewViolation,
    PushAttempt,
    QueueEntry,
    RecordedCall,
    Session,
    SurveyRecord,
    Ticket,
    TicketReply,
    UrobotFlow,
)

log = logging.getLogger(__name__)

# Distinct ranges, so a customer id passed where a session id belongs fails loudly.
_ID_STARTS = {
    "customer": 5_000_001,
    "session": 1_000_001,
    "ticket": 101,
    "reply": 10_001,
    "attachment": 201,
    "phone": 301,
    "email": 401,
    "tag": 501,
    "question": 210_001,
    "urobot_session": 23_701,
    "urobot_log": 55_391,
    "urobot_answer": 601,
}

SETTINGS = (
    "push_url",
    "push_enabled",
    "push_timeout",
    "push_delay",
    "preview_activated",
    "preview_enforce_limit",
    "quota_per_minute",
    "auto_assign",
    "survey_enabled",
    "survey_show_type",
    "welcome_message",
)


class UdeskSimulator:
    """A Udesk company on loopback. Serve ``sim.app``; script it from Python or /_sim/."""

    def __init__(
        self,
        email: str = "admin@example.com",
        api_token: str = "tok",
        push_url: str | None = None,
        *,
        clock: Callable[[], float] = time.time,
        tz: tzinfo = shapes.CHINA_TZ,
    ) -> None:
        self.email = email
        self.api_token = api_token
        self.clock = clock
        self.tz = tz

        # Settings (all may be changed at any time, or through POST /_sim/config).
        self.push_url = push_url  # the bridge's Receiving Message URL, secret included
        self.push_enabled = True  # False: every push fails at once ("bridge unreachable")
        self.push_timeout = 5.0  # Udesk waits 5 s for the 200
        self.push_delay = 0.0  # seconds before each push leaves
        self.preview_activated = True  # False: message_preview answers 2065
        self.preview_enforce_limit = True  # the 4th preview in a second answers 429
        self.quota_per_minute: int | None = None  # None: no quota
        self.auto_assign = False  # True: a freed agent slot takes the next queued customer
        self.survey_enabled = True
        self.survey_show_type = "star"  # text | expression | star
        self.welcome_message = "Hello, what can I help you with?"

        # What Udesk holds.
        self.agents: dict[int, Agent] = {}
        self.customers: dict[int, Customer] = {}
        self.sessions: dict[int, Session] = {}
        self.queue: list[QueueEntry] = []
        self.abandoned_queues: list[dict[str, Any]] = []
        self.tickets: dict[int, Ticket] = {}
        self.attachments: dict[int, Attachment] = {}
        self.urobots: list[dict[str, Any]] = [dict(r) for r in shapes.DEFAULT_UROBOTS]
        self.urobot_flows: dict[int, UrobotFlow] = shapes.default_flows()

        # What was observed.
        self.calls: list[RecordedCall] = []
        self.arrived: list[tuple[str, str]] = []  # (method, path) of every request, as it came
        self.customer_messages: list[CustomerMessage] = []
        self.duplicate_messages: list[CustomerMessage] = []
        self.agent_messages: list[AgentMessage] = []
        self.previews: list[Preview] = []
        self.preview_rate_violations: list[PreviewViolation] = []
        self.surveys: list[SurveyRecord] = []
        self.hits: list[SurveyRecord] = []
        self.push_log: list[PushAttempt] = []
        self.destroyed_sessions: list[int] = []
        self.errors: list[str] = []  # simulator bugs (answered HTTP 500)

        self._ids: dict[str, Iterator[int]] = {k: itertools.count(v) for k, v in _ID_STARTS.items()}
        self._tags: dict[str, int] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = asyncio.Event()

        self.gate = Gatekeeper(clock)
        self.faults = FaultBook()
        self.pusher = Pusher(self)
        self.im = ImEngine(self)
        self._tickets = TicketsApi(self)
        self.app = self._build_app()

    def _build_app(self) -> web.Application:
        # Ticket uploads may be 20 MB; the root app's limit is the one aiohttp applies.
        app = web.Application(client_max_size=25 * 1024 * 1024)
        app.add_subapp(API_PREFIX, build_open_api(self))
        app.add_subapp("/_sim", ControlApi(self).app())
        app.on_shutdown.append(self._on_shutdown)
        app.on_cleanup.append(self._on_cleanup)
        return app

    # --- agents, sessions, pushes ---------------------------------------------------------

    def set_agent(
        self,
        agent_id: int,
        name: str,
        online: bool = True,
        capacity: int = 3,
        group_id: int | None = None,
        *,
        avatar: str = "",
        nick: str = "",
        status: str | None = None,
    ) -> Agent:
        """Add or replace an agent; ``status`` ("online", "busy", "offline") overrides
        ``online``. Only "online" agents receive customers."""
        agent = Agent(
            id=agent_id,
            name=name,
            nick=nick,
            avatar=avatar,
            status=status or ("online" if online else "offline"),
            capacity=capacity,
            group_id=group_id,
        )
        self.agents[agent_id] = agent
        self.im.slot_freed()
        return agent

    async def agent_reply(
        self, customer_token: str, content: str, type: str = "message", **data: Any
    ) -> str:
        """Push an agent message into the customer's open session; returns its message_id.
        Raises SimError without an open session."""
        return await self.im.agent_reply(customer_token, content, type, **data)

    async def robot_reply(
        self,
        customer_token: str,
        answer: str,
        *,
        question: str = "",
        question_id: int | None = None,
        gus_list: list[str] | None = None,
        relate_list: list[str] | None = None,
        third_url: str | None = "https://www.udesk.cn",
    ) -> str:
        """Push a robot (assign_type "robot") answer; returns its message_id."""
        message_id, future = self.im.submit_robot(
            customer_token,
            answer,
            question=question,
            question_id=question_id,
            gus_list=gus_list,
            relate_list=relate_list,
            third_url=third_url,
        )
        await future
        return message_id

    async def urobot_reply(
        self,
        customer_token: str,
        ans_content: str,
        *,
        ans_type: int = 1,
        hit_question: str = "",
        suggest: list[str] | None = None,
        flow_id: int | None = None,
        session_id: int | None = None,
    ) -> int:
        """Push a urobot answer (with flowContent when ``flow_id`` names one of
        ``sim.urobot_flows``); returns its logId."""
        log_id, future = self.im.submit_urobot(
            customer_token,
            ans_content,
            ans_type=ans_type,
            hit_question=hit_question,
            suggest=suggest,
            flow_id=flow_id,
            session_id=session_id,
        )
        await future
        return log_id

    async def transfer(self, customer_token: str, to_agent_id: int) -> Session:
        """Close the open session as "redirect", open one with the new agent and push
        ``transfer`` + a message carrying the new im_sub_session_id."""
        return await self.im.transfer(customer_token, to_agent_id)

    async def close_session(
        self,
        customer_token: str,
        survey: bool = True,
        *,
        close_type: str = "normal",
        content: str = "Session closed",
    ) -> Session:
        """The agent closes the session: a ``close`` push (with survey_options if
        ``survey``)."""
        return await self.im.close(
            customer_token, survey=survey, close_type=close_type, content=content
        )

    async def advance_queue(self) -> list[Session]:
        """Give queued customers to free agents, in line order; pushes start_session."""
        return await self.im.advance_queue()

    async def push(self, body: Any, *, kind: str = "raw", key: str = "") -> PushAttempt:
        """Push any body to push_url (malformed ones included)."""
        return await self.pusher.push(body, kind=kind, key=key)

    async def push_read_status(self, session_id: int, message_ids: list[str]) -> PushAttempt:
        """ "Send Customer Message Read Status": the agent has read these customer messages."""
        body = {"session_id": session_id, "message_ids": list(message_ids)}
        return await self.pusher.push(body, kind="read_status")

    async def field_push(self, url: str, payload: Any) -> PushAttempt:
        """POST a field-push payload (field-push.txt) to ``url``; the answer's text is in
        ``attempt.response_text``."""
        return await self.pusher.post_once(url, payload, kind="field")

    # --- faults ---------------------------------------------------------------------------

    def inject_fault(
        self,
        path_prefix: str = "/",
        kind: str = "http_500",
        *,
        count: int | None = None,
        duration: float | None = None,
        delay: float | None = None,
        method: str | None = None,
    ) -> Fault:
        """Make requests whose path (after /open_api_v1) starts with ``path_prefix`` fail.
        See faults.py for the kinds. Neither count nor duration: until clear_faults()."""
        return self.faults.add(
            path_prefix, kind, count=count, duration=duration, delay=delay, method=method
        )

    def clear_faults(self) -> None:
        self.faults.clear()

    # --- tickets --------------------------------------------------------------------------

    async def ticket_reply(
        self, ticket_id: int, content: str, internal: bool = False, agent_id: int | None = None
    ) -> TicketReply:
        """An agent replies on a ticket (an internal note when ``internal``)."""
        return self._tickets.add_agent_reply(
            ticket_id, content, internal=internal, agent_id=agent_id
        )

    def set_ticket_status(self, ticket_id: int, status: str | int) -> Ticket:
        """``status``: open | resolved | closed | solving, or its id 1-4."""
        return self._tickets.set_status(ticket_id, status)

    # --- reading --------------------------------------------------------------------------

    def messages_for(self, customer_token: str) -> list[CustomerMessage]:
        """Customer messages Udesk accepted from this customer, in order, duplicates not
        included (see ``duplicate_messages``)."""
        return [m for m in self.customer_messages if m.customer_token == customer_token]

    def customer_by_token(self, customer_token: str) -> Customer | None:
        return self.im.customer(customer_token)

    def session_of(self, customer_token: str) -> Session | None:
        """The customer's open agent session, if any."""
        return self.im.open_session(customer_token)

    def calls_to(self, path_prefix: str, method: str | None = None) -> list[RecordedCall]:
        return [
            c
            for c in self.calls
            if c.path.startswith(path_prefix) and (method is None or c.method == method)
        ]

    def configure(self, **settings: Any) -> None:
        unknown = set(settings) - set(SETTINGS)
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}; known: {SETTINGS}")
        if settings.get("survey_show_type", self.survey_show_type) not in shapes.SHOW_TYPES:
            raise ValueError(f"survey_show_type must be one of {sorted(shapes.SHOW_TYPES)}")
        for name, value in settings.items():
            setattr(self, name, value)

    def snapshot(self) -> dict[str, Any]:
        return {
            "config": {name: getattr(self, name) for name in SETTINGS},
            "agents": list(self.agents.values()),
            "customers": [
                c.wire() | {"auto_created": c.auto_created} for c in self.customers.values()
            ],
            "sessions": list(self.sessions.values()),
            "queue": self.queue,
            "tickets": list(self.tickets.values()),
            "faults": self.faults.faults,
            "counts": {
                "calls": len(self.calls),
                "customer_messages": len(self.customer_messages),
                "duplicate_messages": len(self.duplicate_messages),
                "agent_messages": len(self.agent_messages),
                "pushes": len(self.push_log),
                "failed_pushes": sum(1 for p in self.push_log if not p.ok),
                "previews": len(self.previews),
                "preview_rate_violations": len(self.preview_rate_violations),
                "errors": len(self.errors),
            },
        }

    # --- plumbing -------------------------------------------------------------------------

    def next_id(self, kind: str) -> int:
        return next(self._ids[kind])

    def tag_id(self, name: str) -> int:
        if name not in self._tags:
            self._tags[name] = self.next_id("tag")
        return self._tags[name]

    def spawn(
        self, coro: Coroutine[Any, Any, Any], *, name: str | None = None
    ) -> asyncio.Task[Any]:
        """A background task that is kept until done and whose failure is logged and kept
        in ``errors``, never lost."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("udesk simulator task %s failed", task.get_name(), exc_info=task.exception())
            self.errors.append(f"task {task.get_name()}: {task.exception()!r}")

    async def drain(self) -> None:
        """Wait until every background push (start_session, robot answers, ...) is done."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def sleep(self, delay: float) -> None:
        """Sleep that ends early when the server shuts down, so a held "timeout" answer
        does not hold up the shutdown."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), delay)

    async def close(self) -> None:
        """Stop background work and close the push client (the app's cleanup does this)."""
        self._closing.set()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.pusher.close()

    async def _on_shutdown(self, app: web.Application) -> None:
        self._closing.set()

    async def _on_cleanup(self, app: web.Application) -> None:
        await self.close()
