"""What Udesk POSTs to the "Receiving Message URL", and ``parse_push`` for it.

Four shapes (im-open-api.txt, "Reply Message Notification" and "Send Customer Message
Read Status"):

* agent:  ``{customer_token, assign_type: "agent", messages: [{type, message_id, agent_id,
  agent_name, agent_avatar, im_sub_session_id, message_created_at, data: {...}}]}``
* robot:  ``{customer_token, assign_type: "robot", messages: [{type, message_id,
  data: {question_id, question_title, answer, gus_list, relate_list, third_url}}]}``
* urobot: ``{customer_token, assign_type: "urobot", messages: {sessionId, logId, aid,
  ansContent, ansType, hitQuestion, suggestQuestionList, flowId, flowTitle,
  flowContent}}`` - ``messages`` is ONE object.  The documentation's example shows only
  that object, so a bare object with ``sessionId`` and ``logId`` is accepted too (with
  ``customer_token`` None).
* read status: ``{session_id, message_ids}``.

``parse_push`` never raises anything but ``PushParseError`` for any input bytes.
Identity fields (``customer_token``, ``message_id``, ``sessionId``/``logId``,
``session_id``) must be present and sensible; content fields are lenient (a value of the
wrong shape is treated as absent, e.g. the documentation's placeholder string
``"See survey_options section"`` for ``survey_options``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from bridge.udesk.wire import Lenient, LenientList, SurveyOptions
from bridge.untrusted import BadJson, load_json

__all__ = [
    "AgentMessage",
    "AgentMessageData",
    "AgentPush",
    "Push",
    "PushParseError",
    "ReadStatusPush",
    "RobotMessage",
    "RobotMessageData",
    "RobotPush",
    "SuggestQuestion",
    "UrobotMessage",
    "UrobotPush",
    "parse_push",
]


class PushParseError(ValueError):
    """The body is not a push the bridge understands; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _id_str(value: Any) -> Any:
    # Ids arrive as strings or numbers; keep them as non-empty strings.
    if isinstance(value, bool):
        raise ValueError("an id, not a boolean")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        value = value.strip()
        if not value:
            raise ValueError("empty id")
        return value
    raise ValueError("an id must be a string or an integer")


def _object_or_empty(value: Any) -> Any:
    return value if isinstance(value, dict) else {}


IdStr = Annotated[str, BeforeValidator(_id_str), Field(max_length=256)]
Token = Annotated[str, Field(min_length=1, max_length=255)]


class _PushModel(BaseModel):
    model_config = ConfigDict(
        extra="allow", populate_by_name=True, coerce_numbers_to_str=True, frozen=True
    )


# -- agent ----------------------------------------------------------------------------


class AgentMessageData(_PushModel):
    content: str | None = None
    font: str | None = None
    filename: str | None = None
    filesize: str | None = None
    duration: Lenient[float] = None  # seconds, voice only
    close_type: str | None = None  # normal | redirect | force
    survey_options: Lenient[SurveyOptions] = None


class AgentMessage(_PushModel):
    """``type``: message, image, audio, video, file, rich, struct, start_session,
    transfer, info_transfer, close, survey, ... (unknown types are kept)."""

    type: Annotated[str, Field(min_length=1, max_length=64)]
    message_id: IdStr
    agent_id: Lenient[int] = None
    agent_name: str | None = None
    agent_avatar: str | None = None
    im_sub_session_id: Lenient[int] = None
    message_created_at: str | None = None
    data: Annotated[AgentMessageData, BeforeValidator(_object_or_empty)] = Field(
        default_factory=AgentMessageData
    )


class AgentPush(_PushModel):
    kind: Literal["agent"] = "agent"
    customer_token: Token
    assign_type: Literal["agent"] = "agent"
    messages: list[AgentMessage]

    @property
    def dedup_ids(self) -> list[str]:
        return [m.message_id for m in self.messages]


# -- robot ----------------------------------------------------------------------------


class QuestionRef(_PushModel):
    question_title: str | None = None


class ThirdUrl(_PushModel):
    url: str | None = None


class RobotMessageData(_PushModel):
    question_id: Lenient[int] = None  # 0: greeting; else a Q&A that can be rated useful
    question_title: str | None = None
    answer: str | None = None
    gus_list: LenientList[QuestionRef] = Field(default_factory=list)
    relate_list: LenientList[QuestionRef] = Field(default_factory=list)
    third_url: Lenient[ThirdUrl] = None


class RobotMessage(_PushModel):
    type: Annotated[str, Field(min_length=1, max_length=64)] = "message"
    message_id: IdStr
    data: Annotated[RobotMessageData, BeforeValidator(_object_or_empty)] = Field(
        default_factory=RobotMessageData
    )


class RobotPush(_PushModel):
    kind: Literal["robot"] = "robot"
    customer_token: Token
    assign_type: Literal["robot"] = "robot"
    messages: list[RobotMessage]

    @property
    def dedup_ids(self) -> list[str]:
        return [m.message_id for m in self.messages]


# -- urobot ---------------------------------------------------------------------------


class SuggestQuestion(_PushModel):
    id: Lenient[int] = None
    content: str | None = None
    type: Lenient[int] = None


class UrobotMessage(_PushModel):
    session_id: IdStr = Field(alias="sessionId")
    log_id: IdStr = Field(alias="logId")
    aid: Lenient[int] = None
    ans_content: str | None = Field(default=None, alias="ansContent")
    # 1 answer, 2 answer + suggestions, 3 suggestions, 4 greeting, 6 unknown, 8 sensitive
    ans_type: Lenient[int] = Field(default=None, alias="ansType")
    hit_question: str | None = Field(default=None, alias="hitQuestion")
    suggest_question_list: LenientList[SuggestQuestion] = Field(
        default_factory=list, alias="suggestQuestionList"
    )
    flow_id: Lenient[int] = Field(default=None, alias="flowId")
    flow_title: str | None = Field(default=None, alias="flowTitle")
    flow_content: str | None = Field(default=None, alias="flowContent")

    @property
    def message_id(self) -> str:
        """Urobot pushes carry no message id: a stable one from sessionId and logId."""
        return f"urobot-{self.session_id}-{self.log_id}"


def _one_object(value: Any) -> Any:
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


class UrobotPush(_PushModel):
    kind: Literal["urobot"] = "urobot"
    customer_token: Token | None = None
    assign_type: Literal["urobot"] = "urobot"
    messages: Annotated[UrobotMessage, BeforeValidator(_one_object)]

    @property
    def message_id(self) -> str:
        return self.messages.message_id

    @property
    def dedup_ids(self) -> list[str]:
        return [self.messages.message_id]


# -- read status ----------------------------------------------------------------------


class ReadStatusPush(_PushModel):
    """The customer-message read status: these of our messages were read by the agent."""

    kind: Literal["read_status"] = "read_status"
    session_id: Annotated[int, Field(strict=False)]
    message_ids: list[IdStr]

    @property
    def dedup_ids(self) -> list[str]:
        # Idempotent by nature: marking read twice is harmless, nothing to dedup.
        return []


Push = AgentPush | RobotPush | UrobotPush | ReadStatusPush


# -- parsing --------------------------------------------------------------------------


def _describe(err: ValidationError, limit: int = 3) -> str:
    parts = []
    for item in err.errors(include_url=False, include_input=False)[:limit]:
        loc = ".".join(str(p) for p in item.get("loc", ())) or "(root)"
        parts.append(f"{loc}: {item.get('msg', 'invalid')}")
    more = err.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def _classify(obj: dict[str, Any]) -> type[_PushModel]:
    assign_type = obj.get("assign_type")
    if assign_type == "agent":
        return AgentPush
    if assign_type == "robot":
        return RobotPush
    if assign_type == "urobot":
        return UrobotPush
    if assign_type is not None:
        raise PushParseError(f"unknown assign_type {str(assign_type)[:40]!r}")
    if "message_ids" in obj and "session_id" in obj and "messages" not in obj:
        return ReadStatusPush
    messages = obj.get("messages")
    if isinstance(messages, dict) and "sessionId" in messages:
        return UrobotPush
    if "sessionId" in obj and "logId" in obj:
        return UrobotPush  # the bare object as in the documentation's example
    raise PushParseError(
        "unknown shape: expected assign_type agent/robot/urobot or session_id + message_ids"
    )


def parse_push(raw: bytes) -> Push:
    """Parse one Receiving Message URL body; raises only ``PushParseError``."""
    try:
        return _parse(raw)
    except PushParseError:
        raise
    except Exception as exc:  # anything the parser did not foresee is still a bad push
        raise PushParseError(f"unparseable push ({type(exc).__name__})") from None


def _parse(raw: bytes) -> Push:
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise PushParseError("push body must be bytes")
    try:
        obj = load_json(bytes(raw))
    except BadJson as exc:
        raise PushParseError(str(exc)) from None
    if not isinstance(obj, dict):
        raise PushParseError(f"not a JSON object but {type(obj).__name__}")
    model = _classify(obj)
    obj = {k: v for k, v in obj.items() if k != "kind"}  # ours, not the vendor's
    if model is UrobotPush and "messages" not in obj and "sessionId" in obj:
        obj = {"messages": obj}
    try:
        push = model.model_validate(obj)
    except ValidationError as exc:
        raise PushParseError(f"invalid {model.__name__}: {_describe(exc)}") from None
    assert isinstance(push, AgentPush | RobotPush | UrobotPush | ReadStatusPush)
    return push
