"""The IM model behind both the Open API handlers and the Python controls: customers in
robot, queue or agent sessions; what reaches the agent; what is pushed back."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bridge.udesk.errors import CODE_NO_AGENT, CODE_OK, CODE_QUEUED, CODE_SESSION_GONE

from . import shapes
from .state import (
    Agent,
    AgentMessage,
    Customer,
    CustomerMessage,
    PushAttempt,
    QueueEntry,
    Session,
    SimError,
    UrobotFlow,
)

if TYPE_CHECKING:
    from .simulator import UdeskSimulator

MESSAGE_ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")
FLOW_ENTRY = 80  # the flow a urobot question containing "flow" starts

ROBOT, UROBOT, WORKBENCH, QUEUED = 0, -1, -2, -3  # special im_sub_session_id values


class ImEngine:
    def __init__(self, sim: UdeskSimulator) -> None:
        self.sim = sim
        self._message_index: dict[str, CustomerMessage] = {}

    # --- lookups --------------------------------------------------------------------------

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.sim.clock(), self.sim.tz)

    def customer(self, token: str) -> Customer | None:
        return next((c for c in self.sim.customers.values() if c.open_api_token == token), None)

    def ensure_customer(self, token: str) -> Customer:
        # "If the user with this customer_token does not exist in the system Udesk will
        # automatically create a user named API Anonymous User (customer_token)".
        found = self.customer(token)
        if found is not None:
            return found
        customer = Customer(
            id=self.sim.next_id("customer"),
            open_api_token=token,
            fields=shapes.new_customer_fields(f"API Anonymous User ({token})"),
            auto_created=True,
        )
        self.sim.customers[customer.id] = customer
        return customer

    def open_session(self, token: str) -> Session | None:
        return next(
            (
                s
                for s in self.sim.sessions.values()
                if s.customer_token == token and s.status == "open"
            ),
            None,
        )

    def require_open_session(self, token: str) -> Session:
        session = self.open_session(token)
        if session is None:
            raise SimError(f"customer {token!r} has no open agent session")
        return session

    def queue_entry(self, token: str) -> QueueEntry | None:
        return next((e for e in self.sim.queue if e.customer_token == token), None)

    def position(self, entry: QueueEntry) -> int:
        same = [e for e in self.sim.queue if e.queue == entry.queue]
        return same.index(entry) + 1

    def load(self, agent_id: int) -> int:
        return sum(
            1 for s in self.sim.sessions.values() if s.agent_id == agent_id and s.status == "open"
        )

    def agent(self, agent_id: int) -> Agent:
        # An agent removed after the session began still signs its messages.
        return self.sim.agents.get(agent_id) or Agent(agent_id, f"Agent {agent_id}")

    # --- assignment -----------------------------------------------------------------------

    def assign_info(self, session: Session) -> dict[str, Any]:
        agent = self.agent(session.agent_id)
        return {
            "im_sub_session_id": session.id,
            "count": 0,
            "agent_id": agent.id,
            "agent_name": agent.nick or agent.name,
            "agent_avatar": agent.avatar,
            "survey_options": self.survey_options(),
        }

    def survey_options(self) -> dict[str, Any]:
        return shapes.survey_options(self.sim.survey_show_type, self.sim.survey_enabled)

    def request_agent(
        self, token: str, agent_id: int | None, group_id: int | None
    ) -> tuple[int, str, dict[str, Any], Session | None]:
        """POST /im/sessions for an agent: (code, message, assign_info, new session)."""
        session = self.open_session(token)
        if session is not None:  # asking again returns the state, never a second session
            return CODE_OK, shapes.MSG_OK, self.assign_info(session), None
        entry = self.queue_entry(token)
        if entry is None:
            candidates = self._candidates(agent_id, group_id)
            if not any(a.status == "online" for a in candidates):
                msg = "There is no customer service online at the moment"
                return CODE_NO_AGENT, msg, {"count": 0}, None
            queue = queue_name(agent_id, group_id)
            agent = self._free_agent(agent_id, group_id)
            # Nobody jumps the line: with customers waiting, a newcomer waits behind them.
            if agent is not None and not any(e.queue == queue for e in self.sim.queue):
                session = self._start(token, agent, group_id)
                return CODE_OK, shapes.MSG_OK, self.assign_info(session), session
            entry = QueueEntry(token, queue, agent_id, group_id, self.now())
            self.sim.queue.append(entry)
        count = self.position(entry)
        msg = (
            "The current customer service is busy, "
            f"you are in the {shapes.ordinal(count)} place in line."
        )
        return CODE_QUEUED, msg, {"count": count, "queue": entry.queue}, None

    def _candidates(self, agent_id: int | None, group_id: int | None) -> list[Agent]:
        if agent_id is not None:  # "if provided, ignores assign_type and group_id"
            return [a for a in self.sim.agents.values() if a.id == agent_id]
        if group_id is not None:
            return [a for a in self.sim.agents.values() if a.group_id == group_id]
        return list(self.sim.agents.values())

    def _free_agent(self, agent_id: int | None, group_id: int | None) -> Agent | None:
        free = [
            a
            for a in self._candidates(agent_id, group_id)
            if a.status == "online" and self.load(a.id) < a.capacity
        ]
        return min(free, key=lambda a: self.load(a.id), default=None)

    def _start(self, token: str, agent: Agent, group_id: int | None) -> Session:
        customer = self.ensure_customer(token)
        session = Session(
            id=self.sim.next_id("session"),
            customer_token=token,
            customer_id=customer.id,
            agent_id=agent.id,
            group_id=group_id if group_id is not None else agent.group_id,
            created_at=self.now(),
        )
        self.sim.sessions[session.id] = session
        # Messages sent while queued (-3) reach the agent when the session starts.
        for message in self.sim.customer_messages:
            if (
                message.customer_token == token
                and message.im_sub_session_id == QUEUED
                and message.session_id is None
            ):
                message.session_id = session.id
        return session

    def announce(self, session: Session) -> asyncio.Future[PushAttempt]:
        """start_session followed by the welcome message, in one push, as Udesk does."""
        items: list[tuple[str, dict[str, Any]]] = [
            ("start_session", {"content": "Dialogue started"})
        ]
        if self.sim.welcome_message:
            items.append(("message", {"content": self.sim.welcome_message}))
        return self.send_agent(session, items)[1]

    async def advance_queue(self) -> list[Session]:
        started: list[Session] = []
        for entry in list(self.sim.queue):
            agent = self._free_agent(entry.agent_id, entry.group_id)
            if agent is None:
                continue
            self.sim.queue.remove(entry)
            started.append(self._start(entry.customer_token, agent, entry.group_id))
        # Submit every announcement first (each customer has its own push line), then wait.
        await asyncio.gather(*[self.announce(s) for s in started])
        return started

    def slot_freed(self) -> None:
        if not (self.sim.auto_assign and self.sim.queue):
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # set_agent() before the server runs: nobody can be waiting
            return
        self.sim.spawn(self.advance_queue(), name="udesk-sim-auto-assign")

    def leave_queue(self, token: str, queue: str | None) -> bool:
        entry = self.queue_entry(token)
        if entry is None or (queue and entry.queue != queue):
            return False
        self.sim.queue.remove(entry)
        customer = self.customer(token)
        self.sim.abandoned_queues.append(
            {
                "customer_token": token,
                "customer_id": customer.id if customer else None,
                "queue_name": entry.queue,
                "queue_start_time": entry.enqueued_at,
                "queue_seconds": int((self.now() - entry.enqueued_at).total_seconds()),
            }
        )
        return True

    def end(self, session: Session, close_type: str) -> None:
        session.status = "closed"
        session.closed_at = self.now()
        session.close_type = close_type
        session.preview = ""

    async def close(
        self,
        token: str,
        *,
        survey: bool = True,
        close_type: str = "normal",
        content: str = "Session closed",
    ) -> Session:
        session = self.require_open_session(token)
        self.end(session, close_type)
        data: dict[str, Any] = {"close_type": close_type, "content": content}
        if survey:
            data["survey_options"] = self.survey_options()
        await self.send_agent(session, [("close", data)])[1]
        self.slot_freed()
        return session

    async def transfer(self, token: str, to_agent_id: int) -> Session:
        old = self.require_open_session(token)
        agent = self.sim.agents.get(to_agent_id)
        if agent is None:
            raise SimError(f"unknown agent {to_agent_id}")
        self.end(old, "redirect")
        new = self._start(token, agent, agent.group_id)
        old.transferred_to = new.id
        name = agent.nick or agent.name
        text = f"Session transfer successful, customer service {name} is serving you"
        items = [("transfer", {"content": "Session transfer"}), ("message", {"content": text})]
        await self.send_agent(new, items)[1]
        self.slot_freed()
        return new

    def destroy_sessions(
        self, start: datetime, end: datetime, customer_id: int | None
    ) -> list[int]:
        """DELETE /im/sessions/destroy_session: closed sessions created in [start, end]."""
        doomed = {
            s.id
            for s in self.sim.sessions.values()
            if s.status == "closed"
            and start <= s.created_at <= end
            and (customer_id is None or s.customer_id == customer_id)
        }
        for sid in doomed:
            del self.sim.sessions[sid]
        self.sim.customer_messages[:] = [
            m for m in self.sim.customer_messages if m.session_id not in doomed
        ]
        self.sim.agent_messages[:] = [
            m for m in self.sim.agent_messages if m.session_id not in doomed
        ]
        self.sim.destroyed_sessions.extend(sorted(doomed))
        return sorted(doomed)

    def forget_customer(self, customer: Customer) -> None:
        """What deleting a customer does to its IM state."""
        token = customer.open_api_token
        if token:
            session = self.open_session(token)
            if session is not None:
                self.end(session, "force")
            self.sim.queue[:] = [e for e in self.sim.queue if e.customer_token != token]
        del self.sim.customers[customer.id]

    # --- pushes ---------------------------------------------------------------------------

    def send_agent(
        self, session: Session, items: list[tuple[str, dict[str, Any]]]
    ) -> tuple[list[AgentMessage], asyncio.Future[PushAttempt]]:
        """Submit one agent push now (keeping its place in the customer's line) and return
        the records plus the push's future."""
        agent = self.agent(session.agent_id)
        when = self.now()
        wires = [shapes.agent_message(t, agent, session.id, data, when) for t, data in items]
        records = [
            AgentMessage(w["message_id"], session.customer_token, session.id, w) for w in wires
        ]
        self.sim.agent_messages.extend(records)

        def delivered(attempt: PushAttempt) -> None:
            if attempt.ok:
                for record in records:
                    record.delivered = True

        future = self.sim.pusher.submit(
            shapes.agent_push(session.customer_token, wires),
            kind="agent",
            key=session.customer_token,
            on_done=delivered,
        )
        return records, future

    async def agent_reply(
        self, token: str, content: str, type_: str = "message", **data: Any
    ) -> str:
        session = self.require_open_session(token)
        records, future = self.send_agent(session, [(type_, {"content": content, **data})])
        await future
        return records[0].message_id

    def submit_robot(
        self,
        token: str,
        answer: str | None,
        *,
        question: str = "",
        question_id: int | None = None,
        gus_list: list[str] | None = None,
        relate_list: list[str] | None = None,
        third_url: str | None = "https://www.udesk.cn",
    ) -> tuple[str, asyncio.Future[PushAttempt]]:
        qid = question_id if question_id is not None else self.sim.next_id("question")
        data = shapes.robot_answer(question, qid, answer, gus_list, relate_list, third_url)
        body = shapes.robot_push(token, data)
        future = self.sim.pusher.submit(body, kind="robot", key=token)
        return body["messages"][0]["message_id"], future

    def submit_urobot(
        self,
        token: str,
        ans_content: str,
        *,
        ans_type: int = 1,
        hit_question: str = "",
        suggest: list[str] | None = None,
        flow_id: int | None = None,
        robot_id: int | None = None,
        session_id: int | None = None,
    ) -> tuple[int, asyncio.Future[PushAttempt]]:
        customer = self.ensure_customer(token)
        if session_id is None:
            if customer.urobot_session_id is None:
                customer.urobot_session_id = self.sim.next_id("urobot_session")
            session_id = customer.urobot_session_id
        log_id = self.sim.next_id("urobot_log")
        message: dict[str, Any] = {
            "sessionId": session_id,
            "logId": log_id,
            "aid": self.sim.next_id("urobot_answer"),
            "ansContent": ans_content,
            "ansType": ans_type,
            "hitQuestion": hit_question,
            "suggestQuestionList": [
                {"id": 400 + i, "content": q, "type": 1} for i, q in enumerate(suggest or [])
            ],
        }
        if flow_id is not None:
            flow = self.flow(flow_id)
            robot = robot_id if robot_id is not None else self.sim.urobots[0]["id"]
            message.update(
                flowId=flow.id,
                flowTitle=flow.title,
                flowContent=shapes.flow_content(flow, robot),
            )
        future = self.sim.pusher.submit(
            shapes.urobot_push(token, message), kind="urobot", key=token
        )
        return log_id, future

    def flow(self, flow_id: int) -> UrobotFlow:
        flow = self.sim.urobot_flows.get(flow_id)
        if flow is None:
            raise SimError(f"unknown urobot flow {flow_id}")
        return flow

    # --- customer messages ----------------------------------------------------------------

    def accept_message(
        self,
        token: str,
        sub_id: int,
        message_id: str | None,
        type_: str,
        data: dict[str, Any],
        extra: dict[str, Any],
    ) -> tuple[int, str | None]:
        """POST /im/messages after parameter checks: (code, message)."""
        message = CustomerMessage(
            message_id=message_id,
            customer_token=token,
            im_sub_session_id=sub_id,
            session_id=None,
            type=type_,
            data=data,
            received_at=self.sim.clock(),
            params=extra,
        )
        if message_id is not None and message_id in self._message_index:
            # Accepted like the first time, but never shown to the agent twice.
            self.sim.duplicate_messages.append(message)
            return CODE_OK, None
        if sub_id > 0:
            session = self.sim.sessions.get(sub_id)
            if session is None or session.status != "open" or session.customer_token != token:
                return CODE_SESSION_GONE, shapes.MSG_SESSION_GONE
            message.session_id = session.id
            session.preview = ""  # the preview clears when the agent receives a message
        elif sub_id == QUEUED:
            if self.queue_entry(token) is None:
                # Assigned meanwhile (the bridge has not seen start_session yet): the agent
                # gets it in the new session. Neither queued nor in session: refused.
                session = self.open_session(token)
                if session is None:
                    return CODE_SESSION_GONE, shapes.MSG_SESSION_GONE
                message.session_id = session.id
        elif sub_id not in (ROBOT, UROBOT, WORKBENCH):
            return CODE_SESSION_GONE, shapes.MSG_SESSION_GONE
        self.sim.customer_messages.append(message)
        if message_id is not None:
            self._message_index[message_id] = message
        question = str(data.get("content", ""))
        if sub_id == ROBOT:
            self.submit_robot(token, None, question=question)
        elif sub_id == UROBOT:
            self._answer_urobot(token, question, extra)
        return CODE_OK, None

    def _answer_urobot(self, token: str, question: str, extra: dict[str, Any]) -> None:
        robot_id = extra.get("robot_id")
        session_id = extra.get("urobot_session_id")
        if "flow" in question.lower() and FLOW_ENTRY in self.sim.urobot_flows:
            self.submit_urobot(
                token,
                self.sim.urobot_flows[FLOW_ENTRY].answer,
                hit_question=question,
                flow_id=FLOW_ENTRY,
                robot_id=robot_id,
                session_id=session_id,
            )
        else:
            self.submit_urobot(
                token,
                f"Udesk robot answer to: {question}",
                ans_type=2,  # answer plus suggestion list
                hit_question=question,
                suggest=["Question 1", "Question 2"],
                robot_id=robot_id,
                session_id=session_id,
            )

    def unread(self, session_id: int) -> list[AgentMessage]:
        """Agent content messages the customer has not received (events excluded)."""
        return [
            m
            for m in self.sim.agent_messages
            if m.session_id == session_id
            and not (m.delivered or m.read)
            and m.type in shapes.CUSTOMER_MESSAGE_TYPES | {"struct"}
        ]


def queue_name(agent_id: int | None, group_id: int | None) -> str:
    # The docs show "queue:company:1:agent:486"; the number says whose line it is.
    return f"queue:company:1:agent:{agent_id or group_id or 0}"
