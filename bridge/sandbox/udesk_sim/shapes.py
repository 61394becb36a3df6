"""JSON shapes copied from the vendor's examples (udesk-docs), in one place so a reader can
hold them next to the documentation."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from .state import Agent, UrobotFlow

# Udesk runs on China time; its examples print "2017-08-08T20:47:49.000+08:00".
CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")

MSG_OK = "Request successful"
MSG_SESSION_GONE = "Session not found or closed"
MSG_MISSING = "Missing parameters"
MSG_QUOTA = "API interface exceeds request limit"

# message/image/audio/video/file/rich are what a customer may send (Message Content Format).
CUSTOMER_MESSAGE_TYPES = frozenset({"message", "image", "audio", "video", "file", "rich"})


def udesk(code: int = 1000, message: Any = None, **fields: Any) -> web.Response:
    """Udesk always answers HTTP 200; success or failure is the body's ``code``.
    ``message`` is usually text, an object for the upload answers."""
    body: dict[str, Any] = {"code": code}
    if message is not None:
        body["message"] = message
    body.update(fields)
    return web.json_response(body)


def udesk_error(code: int, message: str, exception: str | None = None) -> web.Response:
    # The customers and tickets docs list errors as (code, message, exception:message).
    if exception is None:
        return udesk(code, message)
    return udesk(code, message, exception={"message": exception})


def new_message_id() -> str:
    return str(uuid.uuid4())


def push_time(when: datetime) -> str:
    return when.strftime("%Y%m%d %H:%M:%S")  # "20170711 09:52:11", as in the push examples


def iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat(timespec="milliseconds")


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# --- survey_options -------------------------------------------------------------------------

_COMPAT_OPTIONS = [
    (36, "Super satisfied"),
    (37, "Satisfied"),
    (38, "Average"),
    (39, "Unsatisfied"),
    (40, "Very unsatisfied"),
]
# Each show_type has its own option ids; /im/sessions/survey accepts those of the current
# show_type and the compatible-mode ids above.
_SHOW_TYPE_OPTIONS: dict[str, list[tuple[int, str]]] = {
    "text": [
        (41, "Very satisfied"),
        (42, "Satisfied"),
        (43, "Average"),
        (44, "Unsatisfied"),
        (45, "Very unsatisfied"),
    ],
    "expression": [(51, "Satisfied"), (52, "Average"), (53, "Unsatisfied")],
    "star": [(61, "5 stars"), (62, "4 stars"), (63, "3 stars"), (64, "2 stars"), (65, "1 star")],
}
SHOW_TYPES = frozenset(_SHOW_TYPE_OPTIONS)


def survey_option_ids(show_type: str) -> set[int]:
    return {i for i, _ in _SHOW_TYPE_OPTIONS[show_type]} | {i for i, _ in _COMPAT_OPTIONS}


def survey_options(show_type: str = "star", enabled: bool = True) -> dict[str, Any]:
    typed = _SHOW_TYPE_OPTIONS[show_type]
    return {
        "enabled": enabled,
        "name": "Satisfaction Evaluation",
        "title": "How do you evaluate this service?",
        "desc": "Thank you for your support, please evaluate this service",
        "remark_enabled": True,
        "remark": "You can leave a remark for the evaluation",
        "show_type": show_type,
        show_type: {
            "default_option_id": typed[0][0],
            "options": [
                {
                    "id": i,
                    "text": text,
                    "desc": text,
                    "tags": "",
                    # The worst rating asks for a remark, as companies usually configure it.
                    "remark_option": "required" if i == typed[-1][0] else "optional",
                }
                for i, text in typed
            ],
        },
        "options": [{"id": i, "text": t, "enabled": True} for i, t in _COMPAT_OPTIONS],
        "methods": [
            {
                "id": 7,
                "flag": "after_session",
                "text": "Pop up after the session ends",
                "enabled": True,
            },
            {
                "id": 74,
                "flag": "agent_invite",
                "text": "Customer service actively invites",
                "enabled": True,
            },
            {
                "id": 1485,
                "flag": "customer_invite",
                "text": "Customer actively evaluates satisfaction",
                "enabled": True,
            },
        ],
        "resolved_enabled": True,
        "resolved_options": {
            "title": "Has your problem been resolved?",
            "options": [
                {"option_select": True, "option_name": "Resolved"},
                {"option_select": True, "option_name": "Unresolved"},
            ],
            "value": "0",
        },
    }


# --- customers ------------------------------------------------------------------------------


def new_customer_fields(nick_name: str) -> dict[str, Any]:
    """The documented Customer Data attributes with their empty values."""
    return {
        "nick_name": nick_name,
        "level": "normal",
        "description": None,
        "owner_id": None,
        "owner_group_id": None,
        "custom_fields": {},
        "organization_id": None,
        "is_blocked": False,
        "web_token": None,
        "sdk_token": None,
        "tags": [],
        "rich_tags": [],
        "first_contact_at": None,
        "last_contact_at": None,
        "first_contact_at_via_phone": None,
        "last_contact_at_via_phone": None,
        "first_contact_at_via_im": None,
        "last_contact_at_via_im": None,
        "email": None,
        "other_emails": [],
        "cellphones": [],
        "platform": "API",
        "source_channel": "api",
        "weixins": [],
        "weixin_minis": [],
        "weixin_works": [],
    }


# --- sessions -------------------------------------------------------------------------------

ROBOT_ASSIGN_INFO: dict[str, Any] = {
    "robot_name": "Udesk Customer Service Robot",
    "robot_avatar": "",
    "welcome_message": "<p>Hello, I am the customer service robot, ask me anything!</p>",
    "unknow_message": "<p>I'm sorry, this question is currently out of my knowledge range.</p>",
}


def urobot_assign_info(session_id: int, log_id: int, robot: dict[str, Any]) -> dict[str, Any]:
    return {
        "sessionId": session_id,
        "logId": log_id,
        "robotName": robot.get("name", "Robot"),
        "logoUrl": robot.get("logo") or None,
        "leadingWord": "Hello, it's my pleasure to serve you!",
        "helloWord": "Hello, it's my pleasure to serve you!",
        "topAsk": [
            {
                "quesitionType": "Common questions",  # sic: the vendor's spelling
                "quesitionTypeId": 2,
                "optionsList": [
                    {"quesition": "How do I reset my password?", "quesitionId": 2122},
                    {"quesition": "flow: guide me", "quesitionId": 3222},
                ],
            }
        ],
    }


DEFAULT_UROBOTS: list[dict[str, Any]] = [
    {
        "id": 12362,
        "name": "Test",
        "logo": "",
        "scene_list": [{"id": 39, "name": "Default Scene"}],
        "created_at": "2018-02-05T11:25:30.000+08:00",
    },
    {
        "id": 2,
        "name": "Default Robot",
        "logo": "",
        "scene_list": [{"id": 114, "name": "Default Scene"}, {"id": 116, "name": "System Scene"}],
        "created_at": "2018-01-23T10:55:20.000+08:00",
    },
]


def default_flows() -> dict[int, UrobotFlow]:
    # 80 is the entry a question containing "flow" reaches; 81/82 are its sub-items.
    return {
        80: UrobotFlow(80, "Guide", "Please choose:", [(81, "Option A"), (82, "Option B")]),
        81: UrobotFlow(81, "Option A", "You chose option A.", [(83, "Talk more about A")]),
        82: UrobotFlow(82, "Option B", "You chose option B."),
        83: UrobotFlow(83, "More about A", "That is all about A."),
    }


def flow_content(flow: UrobotFlow, robot_id: int) -> str:
    items = "".join(
        f'<p><b data-type="2" class="flow-item" data-id="{fid}" data-robotid="{robot_id}">'
        f"{label}</b></p>"
        for fid, label in flow.items
    )
    return f"<p>{flow.answer}</p>{items}"


# --- pushes ---------------------------------------------------------------------------------


def agent_message(
    type_: str, agent: Agent, session_id: int, data: dict[str, Any], when: datetime
) -> dict[str, Any]:
    """One element of an agent push's ``messages`` array (Reply Message Notification)."""
    return {
        "type": type_,
        "message_id": new_message_id(),
        "agent_id": agent.id,
        "agent_name": agent.nick or agent.name,
        "agent_avatar": agent.avatar,
        "im_sub_session_id": session_id,
        "message_created_at": push_time(when),
        "data": data,
    }


def agent_push(customer_token: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"customer_token": customer_token, "assign_type": "agent", "messages": messages}


def robot_push(customer_token: str, data: dict[str, Any]) -> dict[str, Any]:
    message = {"type": "message", "message_id": new_message_id(), "data": data}
    return {"customer_token": customer_token, "assign_type": "robot", "messages": [message]}


def robot_answer(
    question: str,
    question_id: int,
    answer: str | None = None,
    gus_list: list[str] | None = None,
    relate_list: list[str] | None = None,
    third_url: str | None = "https://www.udesk.cn",
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "question_id": question_id,
        "question_title": question,
        "answer": answer if answer is not None else f"Robot answer to: {question}",
        "gus_list": [
            {"question_title": q} for q in (gus_list or [f"{question}?", f"More on {question}"])
        ],
        "relate_list": [
            {"question_title": q}
            for q in (relate_list or ["Where is the company located", "Contact details"])
        ],
    }
    if third_url is not None:
        data["third_url"] = {"url": third_url}
    return data


def urobot_push(customer_token: str, message: dict[str, Any]) -> dict[str, Any]:
    # Unlike the other two shapes, urobot ``messages`` is one object, not an array.
    return {"customer_token": customer_token, "assign_type": "urobot", "messages": message}
