"""``parse_push`` on anything: a Push or PushParseError, never another exception."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bridge.udesk.push_models import (
    AgentPush,
    PushParseError,
    ReadStatusPush,
    RobotPush,
    UrobotPush,
    parse_push,
)
from bridge.udesk.push_translate import translate
from tests.hostile.strategies import push_objects

PROPS = settings(max_examples=400, deadline=None)
PUSH_TYPES = (AgentPush, RobotPush, UrobotPush, ReadStatusPush)


def parse_or_reject(raw: bytes) -> Any:
    try:
        push = parse_push(raw)
    except PushParseError as exc:
        assert exc.reason and isinstance(exc.reason, str)
        return None
    assert isinstance(push, PUSH_TYPES)
    return push


@PROPS
@given(st.binary(max_size=2000))
@example(b"")
@example(b"\xff\xfe\x00")
@example(b"[" * 100_000)
@example(b'{"a":' * 50_000)
@example(b"1" * 5000)  # an int longer than Python's int-string limit
@example(b"NaN")
@example(b'"\\ud800"')
@example(b"\xef\xbb\xbf{}")
def test_arbitrary_bytes(raw: bytes) -> None:
    parse_or_reject(raw)


def encodings(obj: Any) -> st.SearchStrategy[bytes]:
    text = json.dumps(obj, ensure_ascii=False)
    return st.sampled_from(
        [
            json.dumps(obj).encode(),
            text.encode("utf-8", "surrogatepass"),  # lone surrogates as invalid UTF-8
            text.encode("utf-16", "surrogatepass"),
            text.encode("utf-8", "surrogatepass") + b" trailing",
            b"\xef\xbb\xbf" + text.encode("utf-8", "surrogatepass"),
        ]
    )


@PROPS
@given(push_objects.flatmap(encodings))
def test_structured_push_shapes(raw: bytes) -> None:
    parse_or_reject(raw)


@PROPS
@given(push_objects, st.sampled_from(["customer_token", "assign_type", "messages", "sessionId"]))
def test_duplicated_keys(obj: Any, key: str) -> None:
    body = json.dumps(obj)
    if body.startswith("{"):
        body = f'{{"{key}": "first", ' + body[1:] if body != "{}" else f'{{"{key}": 1}}'
    parse_or_reject(body.encode())


@PROPS
@given(push_objects)
@example({"assign_type": "urobot", "messages": {"sessionId": "²", "logId": "²"}})
def test_a_parsed_push_translates_without_error(obj: Any) -> None:
    """The push route translates every parsed push before storing it: translation of
    anything parse_push accepted must not raise either (else the push gets a 500)."""
    push = parse_or_reject(json.dumps(obj).encode())
    if push is not None:
        translate(push)
