"""Hypothesis strategies for hostile input: JSON values, push shapes, HTML from a tag alphabet."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# --- JSON values ---------------------------------------------------------------------------

# Strings that hurt: NUL and control characters, lone surrogates, BOM, RTL marks, ZWJ
# sequences, astral emoji, CJK, combining marks, HTML/script payloads, very long runs.
NASTY_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "\udfff",
    "x\udc80y",
    "\ufeff",
    "\u202e\u202d",
    "\u200d",
    "👨‍👩‍👧‍👦",
    "👍🏽",
    "中文测试",
    "e\u0301",
    "²",
    "١٢٣",
    "\u2028\u2029",
    "<script>alert(1)</script>",
    '<a href="javascript:alert(1)">x</a>',
    "<img src=x onerror=alert(1)>",
    "' OR 1=1 --",
    "../../etc/passwd",
    "%00",
    "${jndi:ldap://x}",
    "{0}{1}{position}",
    "x" * 300,
    "9" * 40,
    "-1",
    "0",
    "NaN",
]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(NASTY_STRINGS),
)

json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=12), children, max_size=4),
    ),
    max_leaves=12,
)


def field(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field value: usually of the right kind, sometimes anything at all."""
    return st.one_of(value, value, value, json_values)


ids = field(
    st.one_of(
        st.integers(min_value=-(2**70), max_value=2**70),
        st.text(min_size=1, max_size=30),
        st.sampled_from(NASTY_STRINGS),
    )
)
texts = field(st.one_of(st.text(max_size=60), st.sampled_from(NASTY_STRINGS)))
ints = field(st.integers(min_value=-(2**70), max_value=2**70))


def maybe_dict(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """A dict with any subset of ``fields`` plus, sometimes, extra keys."""
    return st.fixed_dictionaries(
        {}, optional=fields | {"extra_" + k: json_values for k in ("a", "b")}
    )


agent_data = maybe_dict(
    {
        "content": texts,
        "font": texts,
        "filename": texts,
        "filesize": texts,
        "duration": field(st.floats(allow_nan=False)),
        "close_type": field(st.sampled_from(["normal", "redirect", "force"])),
        "survey_options": json_values,
    }
)
agent_message = maybe_dict(
    {
        "type": field(
            st.sampled_from(
                [
                    "message",
                    "rich",
                    "image",
                    "audio",
                    "video",
                    "file",
                    "start_session",
                    "transfer",
                    "close",
                    "survey",
                    "struct",
                    "info_transfer",
                    "zzz",
                ]
            )
        ),
        "message_id": ids,
        "agent_id": ints,
        "agent_name": texts,
        "agent_avatar": texts,
        "im_sub_session_id": ints,
        "message_created_at": texts,
        "data": field(agent_data),
    }
)
question = maybe_dict({"question_title": texts})
robot_data = maybe_dict(
    {
        "question_id": ints,
        "question_title": texts,
        "answer": texts,
        "gus_list": field(st.lists(question, max_size=3)),
        "relate_list": field(st.lists(question, max_size=3)),
        "third_url": field(maybe_dict({"url": texts})),
    }
)
robot_message = maybe_dict(
    {"type": texts, "message_id": ids, "data": field(robot_data)},
)
urobot_message = maybe_dict(
    {
        "sessionId": ids,
        "logId": ids,
        "aid": ints,
        "ansContent": texts,
        "ansType": ints,
        "hitQuestion": texts,
        "suggestQuestionList": field(
            st.lists(maybe_dict({"id": ints, "content": texts, "type": ints}), max_size=3)
        ),
        "flowId": ints,
        "flowTitle": texts,
        "flowContent": texts,
    }
)
tokens = field(st.one_of(st.text(max_size=20), st.sampled_from(NASTY_STRINGS)))

agent_push = maybe_dict(
    {
        "customer_token": tokens,
        "assign_type": st.just("agent"),
        "messages": field(st.lists(agent_message, max_size=4)),
    }
)
robot_push = maybe_dict(
    {
        "customer_token": tokens,
        "assign_type": st.just("robot"),
        "messages": field(st.lists(robot_message, max_size=3)),
    }
)
urobot_push = maybe_dict(
    {
        "customer_token": tokens,
        "assign_type": field(st.just("urobot")),
        "messages": field(st.one_of(urobot_message, st.lists(urobot_message, max_size=2))),
    }
)
read_status_push = maybe_dict(
    {"session_id": ints, "message_ids": field(st.lists(ids, max_size=4))},
)
push_objects = st.one_of(
    agent_push, robot_push, urobot_push, urobot_message, read_status_push, json_values
)

# --- HTML ----------------------------------------------------------------------------------

HTML_TOKENS = [
    "<b>", "</b>", "<strong>", "</strong>", "<i>", "</i>", "<em>", "<u>", "</u>", "<s>", "</s>",
    "<del>", "<code>", "</code>", "<pre>", "</pre>", '<pre><code class="language-py">',
    "</code></pre>", "<tg-spoiler>", "</tg-spoiler>", '<span class="tg-spoiler">', "</span>",
    "<blockquote>", "<blockquote expandable>", "</blockquote>", "<p>", "</p>", "<div>",
    "</div>", "<br>", "<br/>", "<hr>", "<ul>", "<ol>", "<li>", "</li>", "</ul>", "<h1>",
    "</h1>", "<table>", "<tr>", "<td>", "</td>", "<th>", "</tr>", "</table>", "<details>",
    "<summary>", '<a href="https://example.com/a?b=1&amp;c=2">', '<a href="tg://user?id=1">',
    '<a href="mailto:x@example.com">', '<a href="javascript:alert(1)">', "<a href='",
    '<a href="/relative">', '<a href="http://[::1">', "<a>", "</a>",
    '<img src="https://example.com/p.png">', '<img src="javascript:x">',
    "<img src=x onerror=alert(1)>", '<img src="data:image/png;base64,AAAA">',
    "<script>alert(1)</script>", "<script>", "</script>", "<style>b{}</style>", "<style>",
    '<iframe src="https://evil.example"></iframe>', "<iframe>", "<svg onload=alert(1)>",
    "<math>", "<object>", "<textarea>", "<title>", "<noscript>", "<template>",
    '<b data-type="2" class="flow-item" data-id="81" data-robotid="54">',
    '<span data-type="2" data-id="9999999999999999999999">', '<p data-type="2" data-id="-1">',
    "<unknown-tag>", "</unknown-tag>", "<b", "<a href=", "</", "<", ">", "&", "&amp;", "&lt;",
    "&gt;", "&quot;", "&nbsp;", "&#0;", "&#x0;", "&#xD800;", "&#1114112;", "&#128077;",
    "&bogus;", "<!--", "-->", "<!-- c -->", "<![CDATA[x]]>", "<!DOCTYPE html>", "<?xml?>",
    "👍🏽", "👨‍👩‍👧", "中文", "مرحبا", "e\u0301", "\ud800", "\udfff", "\n", "\n\n", " ", "\t",
    "\r", "\r\n", "\x00", "\x0b", "\x1b", "\x7f", "\x85", "\u2028", "\ufeff", "\u200b",
    "\u200d", "\u00a0", "\u3000", "@user", "#tag", "/start", "https://t.me/x", "a.com",
    "x@example.com", "word", "Hello, world.", "w" * 120,
]  # fmt: skip

html_token = st.one_of(st.sampled_from(HTML_TOKENS), st.text(max_size=8))
html_docs = st.one_of(
    st.lists(html_token, max_size=60).map("".join),
    # deep nesting, sometimes unclosed
    st.tuples(
        st.sampled_from(["b", "i", "div", "blockquote", "a", "span", "li", "pre", "ul", "p"]),
        st.integers(min_value=1, max_value=300),
        st.booleans(),
        st.text(max_size=10),
    ).map(lambda t: f"<{t[0]}>" * t[1] + (t[3] or "x") + (f"</{t[0]}>" * t[1] if t[2] else "")),
    # long content that has to be split into several messages
    st.tuples(st.lists(html_token, min_size=1, max_size=8), st.integers(50, 800)).map(
        lambda t: "".join(t[0]) * t[1]
    ),
)
