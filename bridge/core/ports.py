"""What the core needs from Udesk and Telegram, in its own terms.

``bridge.udesk.gateway`` and ``bridge.telegram.gateway`` implement these protocols; the core
never sees a wire format.  Errors are the ones in ``bridge.core.errors``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from bridge.core.model import AgentMessage, OutgoingItem


@dataclass(frozen=True)
class Route:
    """The ``POST /im/sessions`` parameters routing decided on, and the rule that did."""

    assign_type: Literal["robot", "urobot", "agent"] = "agent"
    agent_id: int | None = None
    group_id: int | None = None
    channel: str | None = None
    robot_id: int | None = None
    scene_id: int | None = None
    robot_role_id: str | None = None
    rule_name: str = "default"

    def params(self) -> dict[str, Any]:
        keys = ("assign_type", "agent_id", "group_id", "channel", "robot_id", "scene_id")
        values = {k: getattr(self, k) for k in (*keys, "robot_role_id")}
        return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True)
class SessionOpened:
    """Udesk's answer to a session request."""

    outcome: Literal["agent", "queued", "robot", "urobot"]
    im_sub_session_id: int | None = None
    agent_id: int | None = None
    agent_name: str | None = None
    queue_name: str | None = None
    position: int | None = None
    survey_options: dict[str, Any] | None = None
    welcome_html: str | None = None
    urobot_session_id: int | None = None
    suggestions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MessageTarget:
    """Where a customer message goes: a session id, 0 (robot), -1 (urobot), -3 (queued)."""

    im_sub_session_id: int
    robot_id: int | None = None
    scene_id: int | None = None
    urobot_session_id: int | None = None


class UdeskGateway(Protocol):
    async def ensure_customer(
        self, token: str, *, nick_name: str, description: str, lang: str | None
    ) -> int | None: ...

    async def update_customer(self, token: str, *, nick_name: str) -> None: ...

    async def open_session(self, token: str, route: Route) -> SessionOpened: ...

    async def send_message(
        self,
        token: str,
        target: MessageTarget,
        *,
        message_id: str,
        type: str,
        content: str,
        filename: str | None = None,
    ) -> None: ...

    async def close_session(self, im_sub_session_id: int) -> None: ...

    async def leave_queue(self, token: str, queue_name: str) -> None: ...

    async def queue_position(self, token: str) -> tuple[str, int]: ...

    async def preview(self, im_sub_session_id: int, content: str) -> bool: ...

    async def survey(
        self, im_sub_session_id: int, option_id: int, remark: str | None, resolved: int | None
    ) -> None: ...

    async def robot_survey(
        self,
        token: str,
        im_sub_session_id: int,
        option_id: int,
        robot_id: int,
        scene_id: int,
        remark: str | None,
    ) -> None: ...

    async def answer_survey(
        self,
        token: str,
        message_id: int,
        im_sub_session_id: int,
        option_id: int,
        robot_id: int,
        scene_id: int,
    ) -> None: ...

    async def robot_useful(
        self, token: str, message_id: str, question_id: int, useful: bool
    ) -> None: ...

    async def transfer_survey(
        self, im_sub_session_id: int, robot_id: int, scene_id: int
    ) -> None: ...

    async def flow(
        self, token: str, im_sub_session_id: int, flow_id: int, robot_id: int, scene_id: int
    ) -> None: ...

    async def customer_online(self, token: str, online: bool) -> None: ...

    async def create_ticket(self, token: str, subject: str, content: str) -> int: ...

    async def ticket_reply(self, ticket_id: int, content: str) -> None: ...

    async def attach_to_ticket(
        self, ticket_id: int, data: bytes, filename: str, mime_type: str
    ) -> None: ...

    async def ticket_replies(self, ticket_id: int) -> list[TicketReply]: ...

    async def ticket_finished(self, ticket_id: int) -> bool: ...

    async def unread_agent_messages(
        self, im_sub_session_id: int, customer_id: int
    ) -> list[AgentMessage]: ...

    # Erasure (bridge/privacy/erase.py).
    async def find_customer_id(self, token: str) -> int | None: ...

    async def destroy_im_sessions(
        self, customer_id: int, start: dt.datetime, end: dt.datetime
    ) -> None: ...

    async def destroy_customer(self, token: str) -> bool: ...


@dataclass(frozen=True)
class TicketReply:
    """An agent's reply on a leave-a-message ticket."""

    reply_id: int
    content: str
    internal: bool
    from_customer: bool


@dataclass(frozen=True)
class DownloadedFile:
    data: bytes
    file_name: str
    mime_type: str


class TelegramGateway(Protocol):
    async def show(
        self,
        chat_id: int,
        item: OutgoingItem,
        *,
        language: str | None,
        edit_message_id: int | None,
        skip: int = 0,
    ) -> list[int]:
        """Send (or edit) one item, leaving out its first ``skip`` parts (sent by an earlier
        attempt); returns the Telegram message ids it became.  A transient failure after some
        parts raises a TransientError whose ``sent`` attribute counts them."""
        ...

    async def download(self, file_id: str, *, max_bytes: int) -> DownloadedFile: ...

    async def answer_button(self, callback_query_id: str, text: str | None) -> None: ...
