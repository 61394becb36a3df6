"""Pushes to the Receiving Message URL: the vendor's examples parse, garbage does not."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.udesk.push_models import (
    AgentPush,
    PushParseError,
    ReadStatusPush,
    RobotPush,
    UrobotPush,
    parse_push,
)

# --- the examples of im-open-api.txt, verbatim as far as JSON permits ----------------------

# "Reply Message Notification", assign_type robot: already valid JSON.
DOC_ROBOT_PUSH = """{
"customer_token": "axb",
"assign_type": "robot",
"messages": [{
"type": "message",
"message_id": "f862f80d-89aa-4f31-92d9-ccd4fcacffcf",
"data": {
"question_id": 210530,
"question_title": "What is the company's business?",
"answer": "Hi, we are a company that does cloud customer service. Different developments can communicate and manage users on Weibo and WeChat web.",
"gus_list": [
{"question_title": "What business do you do"},
{"question_title": "What business does your company have"}
],
"relate_list": [
{"question_title": "Where is the company located"},
{"question_title": "What are the contact details"}
],
"third_url": {
"url": "https://www.udesk.cn"
}
}
}]
}"""  # noqa: E501

# assign_type urobot: the documentation shows only the ``messages`` object.
DOC_UROBOT_MESSAGES = """{
"sessionId": 1835244,
"logId": 3574331,
"aid": 12,
"ansContent": "Appeal process",
"ansType": 1,
"hitQuestion": "Account appeal",
"suggestQuestionList": [
{
"id": 434,
"content": "Question 1",
"type": 1
}
]
}"""

# assign_type agent: three trailing commas removed and the missing comma after close_type
# added; the placeholder "See survey_options section" is kept.
DOC_AGENT_PUSH = """{
"customer_token": "axb",
"assign_type": "agent",
"messages": [
{
"type": "start_session",
"message_id": "xxxxx",
"agent_id": 1,
"agent_name": "TOM",
"agent_avatar": "https://123.com/1.png",
"im_sub_session_id": 3,
"message_created_at": "20170711 09:52:11",
"data": {
"content": "Dialogue started"
}
},
{
"type": "message",
"message_id": "xxxxx",
"agent_id": 1,
"agent_name": "TOM",
"agent_avatar": "https://123.com/1.png",
"im_sub_session_id": 3,
"message_created_at": "20170711 09:52:12",
"data": {
"font": "Font, only supports message",
"content": "Hello, what can I help you with?"
}
},
{
"type": "rich",
"message_id": "xxxxx",
"agent_id": 1,
"agent_name": "TOM",
"agent_avatar": "https://123.com/1.png",
"im_sub_session_id": 3,
"message_created_at": "20170711 09:52:13",
"data": {
"content": "Our company's promotional products are hot-selling. Don't miss it. <a href=\\"https://xxx.com/1.png\\">Hot sale.com</a>"
}
},
{
"type": "close",
"message_id": "xxxxx",
"agent_id": 1,
"agent_name": "TOM",
"agent_avatar": "https://123.com/1.png",
"im_sub_session_id": 3,
"message_created_at": "2018-01-01 00:00:00",
"data": {
"close_type": "normal(normal)|redirect(redirect)|force(force)",
"content": "Close the session",
"survey_options": "See survey_options section"
}
}
]
}"""  # noqa: E501

# The survey_options section, turned into JSON (its pseudo-values made concrete).
DOC_SURVEY_OPTIONS = """{
"enabled": true,
"name": "Satisfaction Evaluation",
"title": "How do you evaluate this service?",
"desc": "Thank you for your support, in order to better serve you, please evaluate this service (reply with a letter) ",
"remark_enabled": true,
"remark": "You can leave a remark for the evaluation",
"show_type": "star",
"text": {"default_option_id": 1, "options": [
  {"id": 1, "text": "Very satisfied", "desc": "Cannot be modified", "tags": "tag1,tag2", "remark_option": "optional"}]},
"expression": {"default_option_id": 2, "options": [
  {"id": 2, "text": "Satisfied", "tags": "tag1,tag2", "remark_option": "hide"}]},
"star": {"default_option_id": 3, "options": [
  {"id": 3, "text": "Satisfied", "tags": "tag1,tag2", "remark_option": "required"},
  {"id": 4, "text": "Unsatisfied", "tags": "", "remark_option": "optional"}]},
"options": [
{"id": 36, "text": "Super satisfied", "enabled": true},
{"id": 37, "text": "Satisfied", "enabled": true},
{"id": 38, "text": "Average", "enabled": true},
{"id": 39, "text": "Unsatisfied", "enabled": true},
{"id": 40, "text": "Very unsatisfied", "enabled": true}
],
"methods": [
{"id": 7, "flag": "after_session", "text": "Pop up after the session ends", "enabled": true},
{"id": 74, "flag": "agent_invite", "text": "Customer service actively invites", "enabled": true},
{"id": 1485, "flag": "customer_invite", "text": "Customer actively evaluates satisfaction (only supported by web and Android/iOS SDK)", "enabled": true}
],
"resolved_enabled": true,
"resolved_options": {
"title": "Has your problem been resolved?",
"options": [
{"option_select": true, "option_name": "Resolved"},
{"option_select": true, "option_name": "Unresolved"}],
"value": "0"
}
}"""  # noqa: E501

# "Send Customer Message Read Status": the documentation gives only the parameter table.
DOC_READ_STATUS = '{"session_id": 1234, "message_ids": ["123", "123456"]}'


def test_doc_robot_push() -> None:
    push = parse_push(DOC_ROBOT_PUSH.encode())
    assert isinstance(push, RobotPush)
    assert push.kind == "robot"
    assert push.customer_token == "axb"
    (message,) = push.messages
    assert message.message_id == "f862f80d-89aa-4f31-92d9-ccd4fcacffcf"
    assert message.data.question_id == 210530
    assert message.data.answer is not None and message.data.answer.startswith("Hi, we are")
    assert [g.question_title for g in message.data.gus_list] == [
        "What business do you do",
        "What business does your company have",
    ]
    assert len(message.data.relate_list) == 2
    assert message.data.third_url is not None
    assert message.data.third_url.url == "https://www.udesk.cn"
    assert push.dedup_ids == ["f862f80d-89aa-4f31-92d9-ccd4fcacffcf"]


def test_doc_urobot_bare_messages_object() -> None:
    push = parse_push(DOC_UROBOT_MESSAGES.encode())
    assert isinstance(push, UrobotPush)
    assert push.customer_token is None
    m = push.messages
    assert (m.session_id, m.log_id, m.aid, m.ans_type) == ("1835244", "3574331", 12, 1)
    assert m.ans_content == "Appeal process"
    assert m.hit_question == "Account appeal"
    assert [(s.id, s.content, s.type) for s in m.suggest_question_list] == [(434, "Question 1", 1)]
    assert push.message_id == "urobot-1835244-3574331"


def test_urobot_full_push_and_stable_dedup_id() -> None:
    body: dict[str, Any] = {
        "customer_token": "tok-1",
        "assign_type": "urobot",
        "messages": {
            **json.loads(DOC_UROBOT_MESSAGES),
            "flowId": 81,
            "flowTitle": "Flow",
            "flowContent": '<p><b data-type="2" class="flow-item" data-id="81">A</b></p>',
        },
    }
    push = parse_push(json.dumps(body).encode())
    assert isinstance(push, UrobotPush)
    assert push.customer_token == "tok-1"
    assert push.messages.flow_id == 81
    assert push.messages.flow_title == "Flow"
    again = parse_push(json.dumps(body).encode())
    assert isinstance(again, UrobotPush)
    assert push.dedup_ids == again.dedup_ids == ["urobot-1835244-3574331"]
    # sessionId as a string gives the same id
    body["messages"]["sessionId"] = "1835244"
    third = parse_push(json.dumps(body).encode())
    assert isinstance(third, UrobotPush)
    assert third.message_id == push.message_id
    # a one-element list is unwrapped
    body["messages"] = [body["messages"]]
    assert parse_push(json.dumps(body).encode()).dedup_ids == push.dedup_ids


def test_doc_agent_push() -> None:
    push = parse_push(DOC_AGENT_PUSH.encode())
    assert isinstance(push, AgentPush)
    assert push.kind == "agent"
    assert push.customer_token == "axb"
    assert [m.type for m in push.messages] == ["start_session", "message", "rich", "close"]
    start, text, rich, close = push.messages
    assert start.agent_id == 1 and start.agent_name == "TOM"
    assert start.im_sub_session_id == 3
    assert start.message_created_at == "20170711 09:52:11"
    assert text.data.content == "Hello, what can I help you with?"
    assert text.data.font == "Font, only supports message"
    assert rich.data.content is not None and '<a href="https://xxx.com/1.png">' in rich.data.content
    assert close.data.close_type == "normal(normal)|redirect(redirect)|force(force)"
    assert close.data.content == "Close the session"
    assert close.data.survey_options is None  # the placeholder string counts as absent


def test_agent_close_with_full_survey_options() -> None:
    body = json.loads(DOC_AGENT_PUSH)
    close = body["messages"][3]
    close["data"]["close_type"] = "normal"
    close["data"]["survey_options"] = json.loads(DOC_SURVEY_OPTIONS)
    push = parse_push(json.dumps(body).encode())
    assert isinstance(push, AgentPush)
    options = push.messages[3].data.survey_options
    assert options is not None
    assert options.enabled is True and options.remark_enabled is True
    assert options.show_type == "star"
    assert options.star is not None and [o.id for o in options.star.options] == [3, 4]
    assert options.text is not None and options.text.options[0].remark_option == "optional"
    assert [o.id for o in options.options] == [36, 37, 38, 39, 40]
    assert [m.flag for m in options.methods] == [
        "after_session",
        "agent_invite",
        "customer_invite",
    ]
    assert options.resolved_enabled is True
    assert options.resolved_options is not None
    assert [o.option_name for o in options.resolved_options.options] == ["Resolved", "Unresolved"]
    assert options.resolved_options.value == "0"
    assert [o.id for o in options.choices()] == [3, 4]


def test_agent_media_fields_and_lenient_types() -> None:
    body = {
        "customer_token": "t",
        "assign_type": "agent",
        "messages": [
            {
                "type": "audio",
                "message_id": 991,  # a number: kept as the string "991"
                "agent_id": "7",
                "im_sub_session_id": "42",
                "data": {
                    "content": "https://x/a.amr",
                    "filename": "a.amr",
                    "filesize": "4.3M",
                    "duration": 200,
                },
                "unknown_field": {"kept": True},
            },
            {"type": "transfer", "message_id": "m2", "data": None},
        ],
    }
    push = parse_push(json.dumps(body).encode())
    assert isinstance(push, AgentPush)
    audio, transfer = push.messages
    assert audio.message_id == "991"
    assert audio.agent_id == 7 and audio.im_sub_session_id == 42
    assert audio.data.duration == 200 and audio.data.filesize == "4.3M"
    assert transfer.data.content is None
    assert push.dedup_ids == ["991", "m2"]


def test_doc_read_status() -> None:
    push = parse_push(DOC_READ_STATUS.encode())
    assert isinstance(push, ReadStatusPush)
    assert push.kind == "read_status"
    assert push.session_id == 1234
    assert push.message_ids == ["123", "123456"]
    assert push.dedup_ids == []


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "not JSON"),
        (b"not json", "not JSON"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
        (b'{"a": ' + b"1" * 10_000 + b"}", "not JSON"),
        (b"[]", "not a JSON object"),
        (b"null", "not a JSON object"),
        (b"12", "not a JSON object"),
        (b'"agent"', "not a JSON object"),
        (b"{}", "unknown shape"),
        (b'{"messages": []}', "unknown shape"),
        (b'{"assign_type": "martian", "messages": []}', "unknown assign_type"),
        (b'{"assign_type": "agent"}', "invalid AgentPush"),
        (b'{"assign_type": "agent", "customer_token": "t", "messages": {}}', "invalid"),
        (b'{"assign_type": "agent", "customer_token": "", "messages": []}', "invalid"),
        (
            b'{"assign_type": "agent", "customer_token": "t", "messages": [{"type": "message"}]}',
            "message_id",
        ),
        (
            b'{"assign_type": "agent", "customer_token": "t",'
            b' "messages": [{"type": "message", "message_id": true}]}',
            "message_id",
        ),
        (b'{"assign_type": "robot", "customer_token": "t", "messages": [1]}', "invalid"),
        (b'{"assign_type": "urobot", "customer_token": "t", "messages": {}}', "invalid"),
        (b'{"assign_type": "urobot", "messages": [{"sessionId": 1}]}', "logId"),
        (b'{"session_id": "abc", "message_ids": []}', "invalid ReadStatusPush"),
        (b'{"session_id": 1, "message_ids": "1"}', "invalid ReadStatusPush"),
        (b'{"assign_type": ["agent"], "messages": []}', "unknown assign_type"),
    ],
)
def test_garbage_is_a_push_parse_error(raw: bytes, reason: str) -> None:
    with pytest.raises(PushParseError) as info:
        parse_push(raw)
    assert reason in info.value.reason
    assert isinstance(info.value, ValueError)


def test_trailing_commas_are_not_json() -> None:
    with pytest.raises(PushParseError, match="not JSON"):
        parse_push(b'{"session_id": 1, "message_ids": ["1"],}')


def test_error_reason_does_not_echo_the_body() -> None:
    secret = "very-private-customer-text"
    raw = json.dumps(
        {"assign_type": "agent", "customer_token": 12.5, "messages": [{"data": secret}]}
    ).encode()
    with pytest.raises(PushParseError) as info:
        parse_push(raw)
    assert secret not in str(info.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "customer_token",
                    "assign_type",
                    "messages",
                    "message_id",
                    "type",
                    "data",
                    "sessionId",
                    "logId",
                    "session_id",
                    "message_ids",
                    "survey_options",
                    "x",
                ]
            )
            | st.text(max_size=5),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_fuzz_only_push_parse_error(raw: bytes) -> None:
    try:
        push = parse_push(raw)
    except PushParseError:
        return
    assert isinstance(push, AgentPush | RobotPush | UrobotPush | ReadStatusPush)
