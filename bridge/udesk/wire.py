"""Pydantic models of what the bridge sends to and receives from the Udesk Open API.

Requests (``*Request`` / ``*Query``) are strict: no unknown fields, no type coercion, and
vendor constraints checked before anything goes on the wire.  Answers (``*Answer`` and
their parts) are lenient: unknown fields are kept, every field is optional, strings that
hold numbers become numbers and numbers become strings where a string is expected, and a
nested object of the wrong shape is treated as absent instead of failing the whole answer,
because Udesk's real answers vary between tenants and versions.

Field names follow the vendor's JSON; where the vendor uses camelCase (urobot) the model
uses snake_case with the vendor name as alias.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)

T = TypeVar("T")

# -- helpers --------------------------------------------------------------------------


def _or_none(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError:
        return None


def _list_or_empty(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    if value is None:
        return []
    if not isinstance(value, list):
        return []
    good = []
    for item in value:
        try:
            good.extend(handler([item]))
        except ValidationError:
            continue
    return good


# ``Lenient[X]``: X, or None when the value does not fit X (e.g. the documentation's
# placeholder string "See survey_options section" where an object belongs).
Lenient = Annotated[T | None, WrapValidator(_or_none)]
# ``LenientList[X]``: the items that fit X; [] for null or a non-list.
LenientList = Annotated[list[T], WrapValidator(_list_or_empty)]


class AnswerModel(BaseModel):
    """Base of everything parsed from Udesk: lenient."""

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
        coerce_numbers_to_str=True,
        frozen=False,
    )


class RequestModel(BaseModel):
    """Base of everything the bridge sends: strict."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)

    def to_query(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in self.to_wire().items():
            if isinstance(value, bool):
                out[key] = "true" if value else "false"
            else:
                out[key] = str(value)
        return out


AssignType = Literal["robot", "urobot", "agent"]
MessageType = Literal["message", "image", "audio", "video", "file", "rich"]
CustomerLookupType = Literal[
    "id",
    "email",
    "cellphone",
    "token",
    "weixin_open_id",
    "weixin_mini_openid",
    "weixin_work_identifier",
    "weibo_id",
    "sdk_token",
    "web_token",
]
# message_id: "Only letters, numbers, '_', '-', special characters are not allowed"
MESSAGE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
Str255 = Annotated[str, Field(max_length=255)]


class CodeAnswer(AnswerModel):
    """Every Udesk answer: ``code`` 1000 is success; ``message`` is usually text."""

    code: int | None = None
    message: Any = None

    @property
    def message_text(self) -> str:
        return self.message if isinstance(self.message, str) else ""


class Meta(AnswerModel):
    current_page: int | None = None
    total_pages: int | None = None
    total_count: int | None = None


# -- customers ------------------------------------------------------------------------


class CustomerFields(RequestModel):
    """The ``customer`` object of POST /customers and PUT /customers/update_customer."""

    nick_name: Str255 | None = None
    email: Str255 | None = None
    open_api_token: Str255 | None = None
    description: Str255 | None = None
    organization_id: int | None = None
    owner_id: int | None = None
    owner_group_id: int | None = None
    level: str | None = None
    is_blocked: bool | None = None
    # [[phone_id_or_null, "phone"], ...]
    cellphones: list[tuple[int | None, str]] | None = None
    custom_fields: dict[str, str | list[str]] | None = None
    web_token: Str255 | None = None


class CreateCustomerRequest(RequestModel):
    customer: CustomerFields
    other_emails: list[tuple[int | None, str]] | None = None
    tags: str | None = None

    @model_validator(mode="after")
    def _nick_name_required(self) -> CreateCustomerRequest:
        if not self.customer.nick_name:
            raise ValueError("customer.nick_name is required to create a customer")
        return self


class UpdateCustomerRequest(RequestModel):
    customer: CustomerFields
    other_emails: list[tuple[int | None, str]] | None = None
    tags: str | None = None


class CustomerLookupQuery(RequestModel):
    """?type=&content= of get_customer, update_customer, destroy_customer."""

    type: CustomerLookupType
    content: Annotated[str, Field(min_length=1)]


def _phone_pairs(value: Any) -> Any:
    # Answers give [{"id": 3, "content": "131..."}]; requests (and some answers) [id, "131"].
    if isinstance(value, list):
        return [
            {"id": item[0], "content": item[1]}
            if isinstance(item, list | tuple) and len(item) == 2
            else item
            for item in value
        ]
    return value


class Cellphone(AnswerModel):
    id: int | None = None
    content: str | None = None


class Tag(AnswerModel):
    id: int | None = None
    name: str | None = None
    color: str | None = None
    company_id: int | None = None


class Customer(AnswerModel):
    id: int | None = None
    nick_name: str | None = None
    level: str | None = None
    description: str | None = None
    email: str | None = None
    open_api_token: str | None = None
    web_token: str | None = None
    sdk_token: str | None = None
    owner_id: int | None = None
    owner_group_id: int | None = None
    organization_id: int | None = None
    is_blocked: bool | None = None
    custom_fields: Lenient[dict[str, Any]] = None
    tags: LenientList[Tag] = Field(default_factory=list)
    rich_tags: LenientList[Tag] = Field(default_factory=list)
    cellphones: Annotated[LenientList[Cellphone], BeforeValidator(_phone_pairs)] = Field(
        default_factory=list
    )
    other_emails: Lenient[list[Any]] = None
    platform: str | None = None
    source_channel: str | None = None


class CustomerAnswer(CodeAnswer):
    """POST /customers, GET /customers/get_customer, PUT /customers/update_customer.

    ``already_existed`` is set by the client when Udesk said a customer with this
    ``open_api_token`` already exists (``customer`` may then be None).
    """

    customer: Lenient[Customer] = None
    already_existed: bool = False


class DestroyCustomerAnswer(CodeAnswer):
    customer_id: int | None = None


# -- IM sessions ----------------------------------------------------------------------


class CreateSessionRequest(RequestModel):
    customer_token: Annotated[str, Field(min_length=1)]
    assign_type: AssignType | None = None
    agent_id: int | None = None
    group_id: int | None = None
    channel: str | None = None
    robot_role_id: str | None = None
    robot_id: int | None = None
    scene_id: int | None = None

    @model_validator(mode="after")
    def _urobot_needs_robot_and_scene(self) -> CreateSessionRequest:
        if self.assign_type == "urobot" and (self.robot_id is None or self.scene_id is None):
            raise ValueError("assign_type urobot requires robot_id and scene_id")
        return self


class SurveyOption(AnswerModel):
    """One choice; ``id`` is the ``option_id`` to send to /im/sessions/survey."""

    id: int | str | None = None
    text: str | None = None
    desc: str | None = None
    tags: str | None = None
    remark_option: str | None = None  # hide | required | optional
    enabled: bool | None = None


class SurveyOptionGroup(AnswerModel):
    default_option_id: int | str | None = None
    options: LenientList[SurveyOption] = Field(default_factory=list)


class SurveyMethod(AnswerModel):
    id: int | None = None
    flag: str | None = None
    text: str | None = None
    enabled: bool | None = None


class ResolvedOption(AnswerModel):
    option_select: bool | None = None
    option_name: str | None = None


class ResolvedOptions(AnswerModel):
    title: str | None = None
    options: LenientList[ResolvedOption] = Field(default_factory=list)
    value: str | None = None


class SurveyOptions(AnswerModel):
    """Satisfaction survey settings (``survey_options`` in im-open-api.txt)."""

    enabled: bool | None = None
    name: str | None = None
    title: str | None = None
    desc: str | None = None
    remark_enabled: bool | None = None
    remark: str | None = None
    show_type: str | None = None  # text | exp | expression | star
    text: Lenient[SurveyOptionGroup] = None
    expression: Lenient[SurveyOptionGroup] = None
    star: Lenient[SurveyOptionGroup] = None
    options: LenientList[SurveyOption] = Field(default_factory=list)  # compatible mode
    methods: LenientList[SurveyMethod] = Field(default_factory=list)
    resolved_enabled: bool | None = None
    resolved_options: Lenient[ResolvedOptions] = None

    def choices(self) -> list[SurveyOption]:
        """The options to show: the group named by ``show_type``, else compatible ones."""
        kind = (self.show_type or "").lower()
        group = {
            "text": self.text,
            "exp": self.expression,
            "expression": self.expression,
            "star": self.star,
        }.get(kind)
        if group is not None and group.options:
            return [o for o in group.options if o.enabled is not False]
        return [o for o in self.options if o.enabled is not False]


class RobotAssignInfo(AnswerModel):
    robot_name: str | None = None
    robot_avatar: str | None = None
    welcome_message: str | None = None
    unknow_message: str | None = None  # sic


class TopAskQuestion(AnswerModel):
    question: str | None = Field(default=None, alias="quesition")  # vendor's spelling
    question_id: int | None = Field(default=None, alias="quesitionId")


class TopAskGroup(AnswerModel):
    question_type: str | None = Field(default=None, alias="quesitionType")
    question_type_id: int | None = Field(default=None, alias="quesitionTypeId")
    options_list: LenientList[TopAskQuestion] = Field(default_factory=list, alias="optionsList")


class UrobotAssignInfo(AnswerModel):
    session_id: int | None = Field(default=None, alias="sessionId")
    log_id: int | None = Field(default=None, alias="logId")
    robot_name: str | None = Field(default=None, alias="robotName")
    logo_url: str | None = Field(default=None, alias="logoUrl")
    leading_word: str | None = Field(default=None, alias="leadingWord")
    hello_word: str | None = Field(default=None, alias="helloWord")
    top_ask: LenientList[TopAskGroup] = Field(default_factory=list, alias="topAsk")


class AgentAssignInfo(AnswerModel):
    im_sub_session_id: int | None = None
    count: int | None = None  # position in the queue
    queue: str | None = None  # pass to close_queue
    agent_id: int | None = None
    agent_name: str | None = None
    agent_avatar: str | None = None
    survey_options: Lenient[SurveyOptions] = None


_ASSIGN_INFO_MODELS: dict[str, type[AnswerModel]] = {
    "robot": RobotAssignInfo,
    "urobot": UrobotAssignInfo,
    "agent": AgentAssignInfo,
}


class CreateSessionAnswer(CodeAnswer):
    """POST /im/sessions.  ``assign_info`` is typed by ``assign_type``.

    Code 2001 (queued, or "assignment in progress" with count 0) is an answer, not an
    error: ``queued`` is True, ``position`` and ``queue`` say where.
    """

    assign_type: str | None = None
    assign_info: AgentAssignInfo | UrobotAssignInfo | RobotAssignInfo | dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _type_assign_info(cls, data: Any) -> Any:
        if isinstance(data, dict):
            info = data.get("assign_info")
            model = _ASSIGN_INFO_MODELS.get(str(data.get("assign_type")))
            if model is not None and isinstance(info, dict):
                try:
                    data = {**data, "assign_info": model.model_validate(info)}
                except ValidationError:
                    data = {**data, "assign_info": None}
            elif info is not None and not isinstance(info, dict):
                data = {**data, "assign_info": None}
        return data

    @property
    def queued(self) -> bool:
        return self.code == 2001

    @property
    def agent(self) -> AgentAssignInfo | None:
        return self.assign_info if isinstance(self.assign_info, AgentAssignInfo) else None

    @property
    def robot(self) -> RobotAssignInfo | None:
        return self.assign_info if isinstance(self.assign_info, RobotAssignInfo) else None

    @property
    def urobot(self) -> UrobotAssignInfo | None:
        return self.assign_info if isinstance(self.assign_info, UrobotAssignInfo) else None

    @property
    def position(self) -> int | None:
        return self.agent.count if self.agent else None

    @property
    def queue(self) -> str | None:
        return self.agent.queue if self.agent else None

    @property
    def im_sub_session_id(self) -> int | None:
        return self.agent.im_sub_session_id if self.agent else None

    @property
    def survey_options(self) -> SurveyOptions | None:
        return self.agent.survey_options if self.agent else None


class CloseSessionQuery(RequestModel):
    session_id: int


class CloseQueueQuery(RequestModel):
    customer_token: Annotated[str, Field(min_length=1)]
    queue: Annotated[str, Field(min_length=1)]


class DestroySessionQuery(RequestModel):
    start_time: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")]
    end_time: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")]
    customer_id: int | None = None


class QueueStatusQuery(RequestModel):
    customer_token: Annotated[str, Field(min_length=1)]


class QueueStatusAnswer(CodeAnswer):
    status: str | None = None  # 'In queue', 'Not in queue', 'In session', 'Assigning'
    count: int | None = None


class CustomerStatusQuery(RequestModel):
    customer_token: str | None = None
    web_token: str | None = None
    sdk_token: str | None = None
    session_key: str | None = None

    @model_validator(mode="after")
    def _one_token(self) -> CustomerStatusQuery:
        if not (self.customer_token or self.web_token or self.sdk_token):
            raise ValueError("one of customer_token, web_token, sdk_token is required")
        return self


class CustomerStatusAnswer(CodeAnswer):
    status_code: int | None = None  # 0 no session, 1 in session, 2 in queue, 3 invalid
    status: str | None = None


class AgentStatusQuery(RequestModel):
    group_id: int | None = None


class AgentStatus(AnswerModel):
    id: int | None = None
    name: str | None = None
    nick: str | None = None
    im_nick: str | None = None
    avatar: str | None = None
    profile: str | None = None
    im_status: str | None = None  # online | busy | offline
    im_custom_status: str | None = None
    im_session_num: int | None = None
    im_max_join_num: int | None = None

    @property
    def online(self) -> bool:
        return self.im_status == "online"


class AgentStatusAnswer(CodeAnswer):
    agents: LenientList[AgentStatus] = Field(default_factory=list)


# -- IM messages ----------------------------------------------------------------------


class MessageData(RequestModel):
    """``data`` of POST /im/messages (Message Content Format)."""

    content: str
    font: str | None = None
    filename: str | None = None
    filesize: str | None = None
    duration: int | None = None


class SendMessageRequest(RequestModel):
    customer_token: Annotated[str, Field(min_length=1)]
    # 0/None robot, -1 urobot, -2 IM workbench, -3 while queuing, else the session id
    im_sub_session_id: int
    message_id: Annotated[str, Field(pattern=MESSAGE_ID_PATTERN)]
    type: MessageType = "message"
    data: MessageData
    robot_id: int | None = None
    scene_id: int | None = None
    urobot_session_id: int | None = None
    agent_id: int | None = None
    group_id: int | None = None


class MessagePreviewRequest(RequestModel):
    content: str  # "" clears the preview


class UnreadCustomerOfflineQuery(RequestModel):
    im_sub_session_id: int
    customer_id: int
    app_id: int | None = None


class MessageContent(AnswerModel):
    content: str | None = None
    font: str | None = None
    filename: str | None = None
    filesize: str | None = None
    duration: int | float | str | None = None


class UnreadMessage(AnswerModel):
    type: str | None = None
    message_id: str | None = None
    agent_id: int | None = None
    agent_name: str | None = None
    im_sub_session_id: int | None = None
    message_created_at: str | None = None
    data: Lenient[MessageContent] = None


class UnreadCustomerOfflineAnswer(CodeAnswer):
    count: int | None = None
    unread_messages: LenientList[UnreadMessage] = Field(default_factory=list)


class CustomerOnlineStateRequest(RequestModel):
    customer_token: Annotated[str, Field(min_length=1)]
    state: Literal[0, 1]


# -- surveys, robots ------------------------------------------------------------------


class SurveyRequest(RequestModel):
    """POST /im/sessions/survey (agent session)."""

    im_sub_session_id: int
    option_id: int
    remark: str | None = None
    resolved_state_v2: Literal[0, 1] | None = None


class RobotSurveyRequest(RequestModel):
    """POST /im/sessions/robot_survey (urobot session): option 2/3/4."""

    customer_token: Annotated[str, Field(min_length=1)]
    im_sub_session_id: int
    option_id: int
    robot_id: int
    scene_id: int
    remark: str | None = None


class AnswerSurveyRequest(RequestModel):
    """POST /im/messages/answer_survey (urobot answer): option 1 satisfied, 2 not."""

    customer_token: Annotated[str, Field(min_length=1)]
    message_id: int
    im_sub_session_id: int
    option_id: int
    robot_id: int
    scene_id: int


class TransferSurveyRequest(RequestModel):
    """POST /im/sessions/transfer_survey (urobot: customer asked for a human)."""

    im_sub_session_id: int
    robot_id: int
    scene_id: int


class RobotUsefulRequest(RequestModel):
    """Robot Q&A evaluation (robot session answer with ``question_id`` != 0)."""

    customer_token: Annotated[str, Field(min_length=1)]
    message_id: str
    question_id: int
    useful: bool


class FlowRequest(RequestModel):
    """POST /im/messages/flow (urobot flow item clicked)."""

    customer_token: Annotated[str, Field(min_length=1)]
    im_sub_session_id: int
    flow_id: int
    robot_id: int
    scene_id: int


# -- tickets --------------------------------------------------------------------------


class TicketFields(RequestModel):
    subject: Annotated[str, Field(min_length=1, max_length=255)]
    content: Annotated[str, Field(min_length=1)]
    type: Literal["email", "cellphone", "customer_token", "customer_id"] | None = None
    type_content: Str255 | None = None
    priority: str | None = None
    assignee_email: Str255 | None = None
    agent_group_name: Str255 | None = None
    template_id: int | None = None
    follower_ids: list[int] | None = None
    tags: str | None = None
    status_id: int | None = None
    ticket_field: dict[str, str] | None = None
    creator_email: Str255 | None = None


class CreateTicketRequest(RequestModel):
    ticket: TicketFields


class CreateTicketAnswer(CodeAnswer):
    ticket_id: int | None = None


class TicketCustomerReplyRequest(RequestModel):
    id: int | None = None
    num: str | None = None
    new_reply: Annotated[str, Field(min_length=1)]
    content_type: Literal["html", "text"] = "text"
    attachment_ids: list[int] | None = None

    @model_validator(mode="after")
    def _id_xor_num(self) -> TicketCustomerReplyRequest:
        if (self.id is None) == (self.num is None):
            raise ValueError("exactly one of id and num is required")
        return self


class TicketAttachment(AnswerModel):
    url: str | None = None
    file_name: str | None = None
    file_size: int | None = None


class TicketAuthor(AnswerModel):
    id: int | None = None
    user_type: str | None = None  # agent | customer
    email: str | None = None
    avatar: str | None = None
    nick_name: str | None = None


class TicketReply(AnswerModel):
    id: int | None = None
    content: str | None = None
    content_format: str | None = None
    created_at: str | None = None
    function_type: str | None = None  # internal | external
    cc: str | None = None
    attachments: LenientList[TicketAttachment] = Field(default_factory=list)
    author: Lenient[TicketAuthor] = None

    @property
    def from_customer(self) -> bool:
        return self.author is not None and self.author.user_type == "customer"


class TicketReplyEnvelope(AnswerModel):
    type: str | None = None
    data: Lenient[TicketReply] = None


class TicketReplyAnswer(CodeAnswer):
    """POST /tickets/customer_reply."""

    data: Lenient[TicketReplyEnvelope] = None

    @property
    def reply(self) -> TicketReply | None:
        return self.data.data if self.data else None


class TicketRepliesQuery(RequestModel):
    page: Annotated[int, Field(ge=1)] | None = None
    per_page: Annotated[int, Field(ge=1, le=100)] | None = None


class TicketRepliesAnswer(CodeAnswer):
    replies: LenientList[TicketReply] = Field(default_factory=list)
    meta: Lenient[Meta] = None


class UploadFileQuery(RequestModel):
    ticket_id: int
    file_name: Annotated[str, Field(min_length=1, max_length=255)]
    type: Str255 | None = None


class UploadedFile(AnswerModel):
    msg: str | None = None
    url: str | None = None
    attachment_id: int | None = None
    attachable_type: str | None = None


class UploadFileAnswer(CodeAnswer):
    """POST /tickets/upload_file: here ``message`` is an object."""

    message: UploadedFile | str | None = None

    @property
    def file(self) -> UploadedFile | None:
        return self.message if isinstance(self.message, UploadedFile) else None


class TicketDetail(AnswerModel):
    id: int | None = None
    status_id: int | None = None  # 1 open, 2 resolved, 3 closed, 4 solving (tickets-api.txt)
    status_en: str | None = None


class TicketDetailAnswer(CodeAnswer):
    ticket: Lenient[TicketDetail] = None

    @property
    def finished(self) -> bool:
        """Resolved or closed: the bridge stops polling the ticket."""
        ticket = self.ticket
        if ticket is None:
            return False
        return ticket.status_id in (2, 3) or (ticket.status_en or "").lower() in (
            "resolved",
            "closed",
        )
