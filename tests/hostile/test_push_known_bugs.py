"""Pushes that parse (or are refused) but must never get a 5xx from the push endpoint.

Each case is one odd value in an otherwise valid push, sent to the real push handler on
both databases (``push_app``).  A 5xx here means Udesk retries a push that can never be
stored (503 says "database down") or the handler crashed (500).  Cases with a ``bug`` are
bugs this suite found, on the backends named, all fixed since: they stay as regression
tests, with what went wrong as their description.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.hostile.conftest import KNOWN_TOKEN, PushApp

BOTH = ("postgresql", "sqlite")


def agent_push(token: str = KNOWN_TOKEN, **message: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {"type": "message", "message_id": "m-1", "data": {"content": "hi"}}
    msg.update(message)
    return {"customer_token": token, "assign_type": "agent", "messages": [msg]}


START = agent_push(type="start_session", message_id="start", im_sub_session_id=5, agent_id=1)


@dataclass
class Case:
    body: dict[str, Any]
    bug: str = ""
    on: tuple[str, ...] = BOTH
    before: list[dict[str, Any]] = field(default_factory=list)


LONG_ID = (
    "BUG: queue dedup_key is String(200) ('udesk:' + message_id) but IdStr allows 256 "
    "characters: PostgreSQL raises StringDataRightTruncation, push_route answers 503"
)
NUL = (
    "BUG: a NUL character (JSON \\u0000) in a string that is written to or compared with a "
    "text column: PostgreSQL refuses it (CharacterNotInRepertoire), push_route answers 503"
)
SURROGATE = (
    "BUG: a lone surrogate (JSON \\ud800) in message_id cannot be encoded as UTF-8: 503 on "
    "PostgreSQL, UnicodeEncodeError -> 500 on SQLite (store/queue.py enqueue)"
)
INT64 = (
    "BUG: ids beyond int64 (Lenient[int] / IdStr have no bound) reach BIGINT columns and "
    "queries: DataError -> 503 on PostgreSQL, OverflowError -> 500 on SQLite"
)
CASES: dict[str, Case] = {
    # -- fine today: odd values that are refused (400) or stored (200) --------------------
    "message_id_194_chars": Case(agent_push("nobody", message_id="m" * 194)),
    "message_id_257_chars": Case(agent_push("nobody", message_id="m" * 257)),
    "token_256_chars": Case(agent_push("t" * 256)),
    "surrogate_token": Case(agent_push("\ud800")),
    "surrogate_content_known": Case(agent_push(data={"content": "a\ud800b"})),
    "nul_content_known": Case(agent_push(data={"content": "a\x00b"})),
    "int64_max_sub_session": Case(
        agent_push(type="start_session", im_sub_session_id=2**63 - 1, agent_id=2**63 - 1)
    ),
    "read_status_huge_session": Case({"session_id": 10**30, "message_ids": ["1"]}),
    "survey_star_huge_option_id": Case(
        agent_push(
            type="close",
            data={
                "survey_options": {
                    "enabled": True,
                    "show_type": "star",
                    "star": {"options": [{"id": 10**30, "text": "ok"}]},
                }
            },
        ),
        before=[START],
    ),
    # -- bugs ------------------------------------------------------------------------------
    "message_id_195_chars": Case(
        agent_push("nobody", message_id="m" * 195), LONG_ID, ("postgresql",)
    ),
    "urobot_ids_make_a_long_message_id": Case(
        {
            "customer_token": KNOWN_TOKEN,
            "assign_type": "urobot",
            "messages": {"sessionId": "7" * 100, "logId": "8" * 100},
        },
        LONG_ID + " (urobot-{sessionId}-{logId}, up to 520 characters)",
        ("postgresql",),
    ),
    "nul_in_token": Case(agent_push("a\x00b"), NUL, ("postgresql",)),
    "nul_in_message_id": Case(agent_push("nobody", message_id="a\x00b"), NUL, ("postgresql",)),
    "nul_in_agent_name": Case(
        agent_push(type="start_session", agent_name="T\x00m"), NUL, ("postgresql",)
    ),
    "surrogate_message_id": Case(agent_push("nobody", message_id="\ud800"), SURROGATE),
    "urobot_session_beyond_int64": Case(
        {"assign_type": "urobot", "messages": {"sessionId": "9" * 20, "logId": 1}},
        INT64 + " (push_route._token_for_urobot)",
    ),
    "sub_session_beyond_int64": Case(
        agent_push(type="start_session", im_sub_session_id=2**63),
        INT64 + " (agent_side._agent_session: ImSession.im_sub_session_id)",
    ),
    "agent_id_beyond_int64": Case(
        agent_push(type="start_session", agent_id=2**63),
        INT64 + " (agent_side._agent_session: ImSession.agent_id)",
    ),
    "close_with_sub_session_beyond_int64": Case(
        agent_push(type="close", im_sub_session_id=2**63),
        INT64 + " (agent_side._close -> sessions.by_sub_session)",
    ),
    "urobot_log_id_unicode_digit": Case(
        {
            "customer_token": KNOWN_TOKEN,
            "assign_type": "urobot",
            "messages": {"sessionId": 1, "logId": "²"},
        },
        "BUG: push_translate.from_urobot: '²'.isdigit() is True but int('²') raises "
        "ValueError -> 500",
    ),
    "survey_option_with_a_text_id": Case(
        agent_push(
            type="close",
            data={
                "survey_options": {
                    "enabled": True,
                    "show_type": "text",
                    "text": {"options": [{"id": "abc", "text": "ok"}]},
                }
            },
        ),
        "BUG: agent_side.survey_choices int(option['id']) on SurveyOption.id: int | str "
        "-> ValueError -> 500",
        before=[START],
    ),
    "agent_name_over_200_chars": Case(
        agent_push(type="start_session", agent_name="n" * 201),
        "BUG: ImSession.agent_name is String(200), agent_name is unbounded: "
        "StringDataRightTruncation -> 503 on PostgreSQL",
        ("postgresql",),
    ),
    "transfer_agent_name_over_200_chars": Case(
        agent_push(type="transfer", agent_name="n" * 300),
        "BUG: ImSession.agent_name is String(200) (transfer): 503 on PostgreSQL",
        ("postgresql",),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_no_5xx_for_an_odd_push(
    name: str, push_app: PushApp, request: pytest.FixtureRequest
) -> None:
    case = CASES[name]
    for body in case.before:
        assert await push_app.push(json.dumps(body).encode()) == (200, "")
    status, text = await push_app.push(json.dumps(case.body).encode())
    assert status in (200, 400), (status, text)
    # Udesk may send it again: the answer must be the same, still no 5xx.
    assert (await push_app.push(json.dumps(case.body).encode()))[0] == status
