"""Parsed Udesk pushes → the core's ``AgentMessage`` items.

Per im-open-api.txt's type table: message/rich are shown as HTML; image, audio, video and
file as media; start_session, transfer and close are events; struct, survey, info_transfer,
active_guest, info_appoint, form, form_received, info and robot_transfer are "not for the
customer" and are recorded only.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from bridge.core.model import AgentMessage
from bridge.core.rich_text import parse_udesk_html, without_flow_items
from bridge.udesk import push_models as wire

SHOWN_AS_TEXT = {"message", "rich"}
SHOWN_AS_MEDIA = {"image", "audio", "video", "file"}
EVENTS = {"start_session", "transfer", "close"}


def _survey(data: wire.AgentMessageData) -> dict[str, Any] | None:
    options = data.survey_options
    return options.model_dump(by_alias=True) if options is not None else None


def from_agent(m: wire.AgentMessage) -> AgentMessage:
    kind = m.type
    if kind in SHOWN_AS_TEXT:
        kind = "text"
    elif kind not in SHOWN_AS_MEDIA and kind not in EVENTS:
        kind = "hidden"
    return AgentMessage(
        message_id=m.message_id,
        kind=kind,
        content=m.data.content or "",
        filename=m.data.filename,
        agent_name=m.agent_name,
        agent_id=m.agent_id,
        im_sub_session_id=m.im_sub_session_id,
        survey_options=_survey(m.data),
    )


def agent_message(raw: dict[str, Any]) -> AgentMessage | None:
    """One message of an ``unread_customer_offline`` answer (same shape as a push item)."""
    try:
        return from_agent(wire.AgentMessage.model_validate(raw))
    except ValidationError:
        return None


def from_robot(m: wire.RobotMessage) -> AgentMessage:
    data = m.data
    questions = [q.question_title for q in (*data.gus_list, *data.relate_list) if q.question_title]
    return AgentMessage(
        message_id=m.message_id,
        kind="robot",
        content=data.answer or "",
        questions=list(dict.fromkeys(questions)),
        link=data.third_url.url if data.third_url and data.third_url.url else None,
        question_id=data.question_id or None,
    )


def from_urobot(m: wire.UrobotMessage) -> AgentMessage:
    html = m.ans_content or ""
    flow_items: list[tuple[int, str]] = []
    if m.flow_content:
        # The flow items become buttons; the rest of the flow content joins the answer as
        # its plain text (the text Telegram would show, formatting and images dropped).
        rest, items = without_flow_items(m.flow_content)
        flow_items = [(item.flow_id, item.title) for item in items]
        text = parse_udesk_html(rest).text.lstrip()
        html = "\n".join(p for p in (html, m.flow_title or "", text) if p)
    questions = [q.content for q in m.suggest_question_list if q.content]
    return AgentMessage(
        message_id=m.message_id,
        kind="urobot",
        content=html,
        questions=questions,
        flow_items=flow_items,
        log_id=_int64(m.log_id),
        urobot_session_id=_int64(m.session_id),
    )


def _int64(value: object) -> int | None:
    """An id Udesk sent as text, when it is a number that fits our columns."""
    text = str(value)
    if not text.isascii() or not text.isdecimal():
        return None
    number = int(text)
    return number if number < 2**63 else None


def translate(push: wire.Push) -> tuple[str | None, list[AgentMessage]]:
    """The push's customer token (None for urobot pushes without one) and its items."""
    if isinstance(push, wire.AgentPush):
        return push.customer_token, [from_agent(m) for m in push.messages]
    if isinstance(push, wire.RobotPush):
        return push.customer_token, [from_robot(m) for m in push.messages]
    if isinstance(push, wire.UrobotPush):
        return push.customer_token, [from_urobot(push.messages)]
    return None, []
