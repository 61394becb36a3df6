"""What the simulated Udesk remembers: plain dataclasses, so tests can read them directly and
the control API can serialise them with ``dataclasses.asdict``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class SimError(LookupError):
    """A simulator control was asked for something that does not exist (no open session,
    unknown agent or ticket); the control API answers it with HTTP 404."""


@dataclass
class Agent:
    id: int
    name: str
    nick: str = ""
    avatar: str = ""
    # online | busy | offline, the values GET /im/agent_status reports; only "online" agents
    # receive new customers, as in Udesk.
    status: str = "online"
    capacity: int = 3
    group_id: int | None = None


@dataclass
class Customer:
    id: int
    open_api_token: str | None
    # Every other attribute of the documented Customer Data shape, as Udesk returns it.
    fields: dict[str, Any]
    # True when POST /im/sessions met an unknown token and Udesk made an "API Anonymous
    # User" on its own: tests assert the bridge created the customer first.
    auto_created: bool = False
    online_state: int | None = None  # last POST /im/customer_online_state
    urobot_session_id: int | None = None

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, **self.fields, "open_api_token": self.open_api_token}


@dataclass
class Session:
    """An agent IM sub-session (``im_sub_session_id``)."""

    id: int
    customer_token: str
    customer_id: int
    agent_id: int
    group_id: int | None
    created_at: datetime
    status: str = "open"  # open | closed
    closed_at: datetime | None = None
    close_type: str | None = None  # normal | redirect | force | client | destroyed
    preview: str = ""  # current message preview the agent sees
    transferred_to: int | None = None


@dataclass
class QueueEntry:
    customer_token: str
    queue: str  # "queue:company:1:agent:N", as the 2001 answer names it
    agent_id: int | None
    group_id: int | None
    enqueued_at: datetime


@dataclass
class CustomerMessage:
    """A customer message Udesk accepted through POST /im/messages."""

    message_id: str | None
    customer_token: str
    im_sub_session_id: int  # as sent: > 0 session, 0 robot, -1 urobot, -2 workbench, -3 queued
    # The agent session the message reached; None while it waits in the queue (-3) and for
    # robot questions.
    session_id: int | None
    type: str
    data: dict[str, Any]
    received_at: float
    params: dict[str, Any] = field(default_factory=dict)  # robot_id, scene_id, ...


@dataclass
class AgentMessage:
    """A message pushed to the customer in an agent session (events included)."""

    message_id: str
    customer_token: str
    session_id: int
    wire: dict[str, Any]  # exactly the object inside the push's ``messages`` array
    # Set when a push carrying it was answered 200; an undelivered message stays unread and
    # GET /im/messages/unread_customer_offline returns it.
    delivered: bool = False
    read: bool = False

    @property
    def type(self) -> str:
        return str(self.wire["type"])


@dataclass
class Preview:
    session_id: int
    content: str
    monotonic: float
    time: float
    code: int


@dataclass
class PreviewViolation:
    session_id: int
    monotonic: float
    previews_in_window: int  # including the offending one, so always > 3


@dataclass
class PushAttempt:
    kind: str  # agent | robot | urobot | read_status | field | raw
    url: str | None
    body: Any
    time: float
    status: int | None = None
    error: str | None = None  # "timeout", "push disabled", a connection error, ...
    response_text: str = ""
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class RecordedCall:
    method: str
    path: str  # relative to /open_api_v1, e.g. "/im/messages"
    query: dict[str, str]  # without email/timestamp/nonce/sign/sign_version
    body: Any
    code: int | None  # the JSON "code" answered, None when the answer had none
    http_status: int
    time: float
    duration: float = 0.0
    fault: str | None = None  # the injected fault kind that answered, if any


@dataclass
class SurveyRecord:
    kind: str  # session | robot | answer | transfer | robot_useful
    params: dict[str, Any]
    time: float


@dataclass
class UrobotFlow:
    """One node of a urobot flow; ``items`` are (flow_id, label) links rendered as
    ``<b data-type="2" class="flow-item" data-id=...>`` in flowContent."""

    id: int
    title: str
    answer: str
    items: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class Attachment:
    id: int
    ticket_id: int
    file_name: str
    content_type: str
    url: str
    for_reply: bool
    data: bytes = field(repr=False, default=b"")


@dataclass
class TicketReply:
    id: int
    content: str
    content_format: str
    function_type: str  # internal | external
    author: dict[str, Any]
    created_at: datetime
    attachments: list[dict[str, Any]] = field(default_factory=list)
    cc: str | None = None


@dataclass
class Ticket:
    id: int
    subject: str
    content: str
    customer_id: int | None
    created_at: datetime
    updated_at: datetime
    status_id: int = 1
    priority_id: int = 3
    tags: str = ""
    custom_fields: dict[str, Any] = field(default_factory=dict)
    replies: list[TicketReply] = field(default_factory=list)
    attachment_ids: list[int] = field(default_factory=list)
