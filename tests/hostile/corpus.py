"""A deterministic corpus of malformed and adversarial Udesk pushes (fixed seed).

``build_corpus(token)`` returns ``(label, body)`` pairs: ``label`` names the generator, so a
failure says which kind of input caused it.  ``token`` is the customer_token of a real
customer of the bridge: some well-formed pushes with hostile content go to that person (and
are delivered), most go to unknown tokens or are malformed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from tests.hostile.strategies import HTML_TOKENS, NASTY_STRINGS

SEED = 20260611
MAX_BODY = 1024 * 1024

HOSTILE_HTML = [
    "<script>alert(document.cookie)</script>hello",
    '<a href="javascript:alert(1)">click me</a>',
    "<img src=x onerror=\"fetch('//evil')\">",
    '<iframe src="https://evil.example/"></iframe>text',
    "<style>*{display:none}</style>visible",
    "<b>" * 2000 + "deep",
    "<div>" * 120 + "nested" + "</div>" * 120,
    "<b><i><u>unclosed",
    "&lt;b&gt;escaped&lt;/b&gt; &#0; &#xD800; &bogus;",
    '<a href="tg://resolve?domain=evil">tg</a>',
    '<a href="https://example.com/' + "a" * 5000 + '">long link</a>',
    '<pre><code class="language-x"><b>code</b></code></pre>',
    "<blockquote><blockquote>quote in quote</blockquote></blockquote>",
    "👨‍👩‍👧‍👦" * 1200,
    "中文" * 3000,
    "\u202eevil\u202c" * 10,
    "word " * 3000,
    '<tg-spoiler>s</tg-spoiler><span class="tg-spoiler">p</span>',
    "<table><tr><td>a</td><td>b</td></tr></table>",
    "<!-- comment --><![CDATA[x]]><!DOCTYPE html>",
]


class Corpus:
    def __init__(self, token: str, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.token = token
        self.items: list[tuple[str, bytes]] = []
        self.counter = 0

    # --- helpers -----------------------------------------------------------------------

    def add(self, label: str, body: bytes | str | Any) -> None:
        if isinstance(body, str):
            body = body.encode("utf-8", "surrogatepass")
        elif not isinstance(body, bytes):
            body = json.dumps(body).encode()
        assert len(body) <= MAX_BODY, label
        self.items.append((label, body))

    def mid(self) -> str:
        self.counter += 1
        return f"hostile-{self.counter}"

    def nasty(self) -> str:
        return self.rng.choice(NASTY_STRINGS)

    def junk_value(self, depth: int = 0) -> Any:
        r = self.rng.random()
        if depth > 2 or r < 0.5:
            return self.rng.choice(
                [
                    None,
                    True,
                    False,
                    0,
                    -1,
                    2**63,
                    -(2**63) - 1,
                    10**30,
                    1.5,
                    1e308,
                    "",
                    self.nasty(),
                    [],
                    {},
                    "See survey_options section",
                ]
            )
        if r < 0.75:
            return [self.junk_value(depth + 1) for _ in range(self.rng.randint(0, 3))]
        return {self.nasty(): self.junk_value(depth + 1) for _ in range(self.rng.randint(0, 3))}

    def unknown_token(self) -> str:
        return self.rng.choice(
            [
                "nobody",
                "tg-0",
                "tg--1",
                "' OR '1'='1",
                "x" * 255,
                "tg-8001 ",
                "TG-8001",
                "../tg-8001",
                "%74g-8001",
                "tg-8001\u200b",
                "😀",
            ]
        )

    def agent_msg(self, **overrides: Any) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "type": "message",
            "message_id": self.mid(),
            "agent_id": 1,
            "agent_name": "Tom",
            "im_sub_session_id": 1,
            "message_created_at": "2026-06-11 10:00:00",
            "data": {"content": "hello"},
        }
        msg.update(overrides)
        return msg

    def agent_push(self, token: Any, *messages: dict[str, Any]) -> dict[str, Any]:
        return {"customer_token": token, "assign_type": "agent", "messages": list(messages)}

    # --- generators --------------------------------------------------------------------

    def not_json(self) -> None:
        samples = [
            b"",
            b" ",
            b"\n",
            b"{",
            b"}",
            b"{not json",
            b"<xml/>",
            b"a=1&b=2",
            b'{"a":1,}',
            b"{'single': 'quotes'}",
            b"\x00" * 10,
            b"\xff\xfe\xfd",
            b'{"customer_token": "\xff"}',
            b"\xef\xbb\xbf",
            b"[1,2",
            b'"unterminated',
            b"NaN",
            b"-",
            b"1e",
            b'{"a": tru}',
            b"\xc0\xaf",
            b"\xed\xa0\x80",
        ]
        for sample in samples:
            self.add("not_json", sample)
        for _ in range(60):
            n = self.rng.randint(1, 400)
            self.add("random_bytes", bytes(self.rng.getrandbits(8) for _ in range(n)))
        good = json.dumps(self.agent_push(self.token, self.agent_msg())).encode()
        for _ in range(40):
            cut = self.rng.randint(0, len(good) - 1)
            self.add("truncated_json", good[:cut])
        for _ in range(20):
            pos = self.rng.randint(0, len(good) - 1)
            self.add("bitflip", good[:pos] + bytes([good[pos] ^ 0x80]) + good[pos + 1 :])

    def not_objects(self) -> None:
        for body in [
            "[]",
            "[{}]",
            "null",
            "true",
            "0",
            "-0",
            "1e400",
            '"string"',
            "[null]",
            "1" * 5000,
            '[{"customer_token": "x", "assign_type": "agent"}]',
            json.dumps([self.agent_push(self.token, self.agent_msg())]),
        ]:
            self.add("not_an_object", body)
        for _ in range(20):
            self.add("random_json", json.dumps(self.junk_value()))

    def deep_nesting(self) -> None:
        for depth in (100, 1000, 10_000, 100_000, 400_000):
            self.add("deep_list", "[" * depth + "]" * depth)
            self.add("deep_list_unclosed", "[" * depth)
        for depth in (500, 5000, 50_000):
            inner = '{"a":' * depth + "1" + "}" * depth
            self.add("deep_object", inner)
            push = self.agent_push(self.token, self.agent_msg())
            body = json.dumps(push)[:-1] + ', "extra": ' + inner + "}"
            self.add("deep_extra_field", body)
            msg = json.dumps(self.agent_msg())
            self.add(
                "deep_data",
                '{"customer_token": "nobody", "assign_type": "agent", "messages": ['
                + msg[:-1]
                + ', "data": {"content": '
                + "[" * depth
                + "]" * depth
                + "}}]}",
            )

    def wrong_types(self) -> None:
        for _ in range(200):
            push: dict[str, Any] = self.agent_push(self.unknown_token(), self.agent_msg())
            where = self.rng.choice(
                [
                    "customer_token",
                    "assign_type",
                    "messages",
                    "message",
                    "message_id",
                    "type",
                    "data",
                    "content",
                    "agent_id",
                    "im_sub_session_id",
                    "root_extra",
                ]
            )
            junk = self.junk_value()
            if where in ("customer_token", "assign_type", "messages"):
                push[where] = junk
            elif where == "message":
                push["messages"] = [junk]
            elif where == "content":
                push["messages"][0]["data"] = {"content": junk}
            elif where == "root_extra":
                push[self.nasty()] = junk
            else:
                push["messages"][0][where] = junk
            self.add(f"wrong_type:{where}", push)
        for _ in range(40):
            push = {
                "assign_type": self.rng.choice(
                    ["robot", "urobot", "ROBOT", "agent ", 1, None, ["agent"], "transfer"]
                )
            }
            push["customer_token"] = self.unknown_token()
            push["messages"] = self.junk_value()
            self.add("wrong_type:assign_type_mix", push)

    def missing_fields(self) -> None:
        full = self.agent_push("nobody", self.agent_msg())
        for key in ("customer_token", "assign_type", "messages"):
            self.add(f"missing:{key}", {k: v for k, v in full.items() if k != key})
        msg = self.agent_msg()
        for key in list(msg):
            self.add(
                f"missing:message.{key}",
                self.agent_push("nobody", {k: v for k, v in msg.items() if k != key}),
            )
        self.add("missing:read_status.session_id", {"message_ids": ["1"]})
        self.add("missing:read_status.message_ids", {"session_id": 1})
        self.add("missing:urobot.logId", {"assign_type": "urobot", "messages": {"sessionId": 1}})
        self.add("missing:urobot.messages", {"assign_type": "urobot", "customer_token": "x"})
        self.add("empty_object", {})
        for _ in range(30):
            keep = [k for k in msg if self.rng.random() < 0.5]
            self.add("missing:random", self.agent_push("nobody", {k: msg[k] for k in keep}))

    def huge(self) -> None:
        big = MAX_BODY - 400
        self.add(
            "huge:content_unknown",
            self.agent_push("nobody", self.agent_msg(data={"content": "x" * big})),
        )
        self.add("huge:token", self.agent_push("t" * big, self.agent_msg()))
        self.add("huge:agent_name", self.agent_push("nobody", self.agent_msg(agent_name="n" * big)))
        self.add("huge:type", self.agent_push("nobody", self.agent_msg(type="t" * 100_000)))
        self.add(
            "huge:many_messages", self.agent_push("nobody", *[self.agent_msg() for _ in range(300)])
        )
        self.add(
            "huge:read_status", {"session_id": 1, "message_ids": [str(i) for i in range(80_000)]}
        )
        self.add("huge:number", '{"session_id": ' + "9" * 4000 + ', "message_ids": ["1"]}')
        self.add("huge:float", '{"session_id": 1e999, "message_ids": ["1"]}')
        # ... and one the real customer receives: 50k characters, truncated and split.
        self.add(
            "huge:content_known",
            self.agent_push(
                self.token,
                self.agent_msg(data={"content": "<p>" + "long words here. " * 12_000 + "</p>"}),
            ),
        )

    def long_ids(self) -> None:
        for n in (64, 190, 194, 195, 200, 255, 256, 257, 1000, 100_000):
            self.add(
                f"long_message_id:{n}",
                self.agent_push("nobody", self.agent_msg(message_id="m" * n)),
            )
        for n in (20, 40, 200, 300):
            self.add(
                f"long_urobot_ids:{n}",
                {
                    "assign_type": "urobot",
                    "messages": {"sessionId": "7" * n, "logId": "8" * n, "ansContent": "x"},
                },
            )
        for value in (2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**40, -1, 0):
            self.add(f"big_int:session_id:{value}", {"session_id": value, "message_ids": ["1"]})
            self.add(
                f"big_int:im_sub_session_id:{value}",
                self.agent_push("nobody", self.agent_msg(im_sub_session_id=value, agent_id=value)),
            )

    def duplicated_keys(self) -> None:
        for _ in range(40):
            msg = json.dumps(self.agent_msg())
            key = self.rng.choice(["customer_token", "assign_type", "messages"])
            first = json.dumps(self.junk_value())
            body = (
                f'{{"{key}": {first}, "customer_token": "nobody", "assign_type": "agent", '
                f'"messages": [{msg}], "{key}": {first}}}'
            )
            self.add(f"duplicated_key:{key}", body)
        msg = self.agent_msg()
        self.add(
            "duplicated_key:message_id",
            json.dumps(msg)[:-1] + ', "message_id": null}',
        )

    def unicode(self) -> None:
        for s in NASTY_STRINGS:
            self.add("unicode:token", self.agent_push(s, self.agent_msg()))
            self.add("unicode:type", self.agent_push("nobody", self.agent_msg(type=s or "x")))
            self.add(
                "unicode:content_unknown",
                self.agent_push("nobody", self.agent_msg(data={"content": s})),
            )
        push = json.dumps(self.agent_push("nobody", self.agent_msg()), ensure_ascii=False)
        for codec in ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1", "utf-8-sig"):
            self.add(f"encoding:{codec}", push.encode(codec))
        self.add(
            "encoding:raw_surrogate",
            push.replace("hello", "\ud800").encode("utf-8", "surrogatepass"),
        )
        self.add("encoding:overlong", push.encode().replace(b"hello", b"\xc0\xafhello"))

    def hostile_content_known(self) -> None:
        """Well-formed pushes to the real customer with hostile content: delivered."""
        for html in HOSTILE_HTML:
            self.add(
                "known:html",
                self.agent_push(
                    self.token,
                    self.agent_msg(
                        type=self.rng.choice(["message", "rich"]), data={"content": html}
                    ),
                ),
            )
        for _ in range(25):
            html = "".join(self.rng.choice(HTML_TOKENS) for _ in range(self.rng.randint(1, 40)))
            self.add(
                "known:html_tokens",
                self.agent_push(self.token, self.agent_msg(data={"content": html})),
            )
        for s in NASTY_STRINGS:
            self.add(
                "known:nasty_text", self.agent_push(self.token, self.agent_msg(data={"content": s}))
            )
        # file:// URIs and local paths: see tests/security/test_agent_media.py (bugs today).
        for url in (
            "javascript:alert(1)",
            "gopher://127.0.0.1:25/",
            "ftp://127.0.0.1/x",
            "data:image/png;base64,AAAA",
            "",
            "not a url",
            "nonexistent/relative",
        ):
            kind = self.rng.choice(["image", "file", "audio", "video"])
            self.add(
                "known:media_url",
                self.agent_push(
                    self.token,
                    self.agent_msg(
                        type=kind, data={"content": url, "filename": "../../etc/passwd"}
                    ),
                ),
            )
        for options in (
            "See survey_options section",
            {"enabled": True, "show_type": "text", "text": {"options": [{"id": 1, "text": "ok"}]}},
            {"enabled": True, "show_type": "star", "star": {"options": "nope"}},
            {"enabled": True, "title": "<b>" * 50, "options": [{"text": "no id"}]},
        ):
            self.add(
                "known:survey_in_message",
                self.agent_push(
                    self.token, self.agent_msg(type="survey", data={"survey_options": options})
                ),
            )
        for name in ("<b>Tom</b>", "", "👍" * 50, "\u202eTom"):
            self.add(
                "known:agent_name",
                self.agent_push(
                    self.token, self.agent_msg(agent_name=name, data={"content": "hi from " + name})
                ),
            )
        self.add(
            "known:robot",
            {
                "customer_token": self.token,
                "assign_type": "robot",
                "messages": [
                    {
                        "type": "message",
                        "message_id": self.mid(),
                        "data": {
                            "question_id": "See",
                            "answer": "<script>x</script>robot",
                            "gus_list": [{"question_title": "q" * 500}, "junk", None],
                            "relate_list": "junk",
                            "third_url": {"url": "https://www.udesk.cn"},
                        },
                    }
                ],
            },
        )
        self.add(
            "known:urobot_flow",
            {
                "customer_token": self.token,
                "assign_type": "urobot",
                "messages": {
                    "sessionId": 424242,
                    "logId": 1,
                    "ansType": 2,
                    "ansContent": "<b>a",
                    "flowContent": '<p data-type="2" data-id="x">bad</p><b data-type="2" '
                    'data-id="5">ok</b>' * 20,
                    "suggestQuestionList": [{"id": "x"}, 5],
                },
            },
        )
        self.add("known:read_status", {"session_id": 1, "message_ids": ["1", 2, "x" * 200]})

    def unknown_customers(self) -> None:
        for _ in range(120):
            msg = self.agent_msg(
                type=self.rng.choice(
                    [
                        "message",
                        "rich",
                        "image",
                        "file",
                        "start_session",
                        "transfer",
                        "close",
                        "survey",
                        "info_transfer",
                    ]
                ),
                data={"content": self.rng.choice(HOSTILE_HTML[:13] + NASTY_STRINGS[14:])},
            )
            self.add("unknown_customer", self.agent_push(self.unknown_token(), msg))
        for _ in range(40):
            self.add(
                "urobot_unknown_session",
                {
                    "assign_type": "urobot",
                    "messages": {
                        "sessionId": self.rng.randint(1, 10**9),
                        "logId": self.rng.randint(1, 10**9),
                        "ansContent": self.rng.choice(HOSTILE_HTML[:13]),
                    },
                },
            )
        for _ in range(40):
            self.add(
                "read_status_junk",
                {
                    "session_id": self.rng.choice([1, "1", 2**62, -5]),
                    "message_ids": [self.junk_value() for _ in range(3)],
                },
            )

    def replays(self) -> None:
        """Some pushes again: the same message_id is acknowledged, never delivered twice."""
        for label, body in self.rng.sample(self.items, 60):
            self.add(f"replay:{label}", body)


def build_corpus(token: str, seed: int = SEED) -> list[tuple[str, bytes]]:
    corpus = Corpus(token, seed)
    steps: list[Callable[[], None]] = [
        corpus.not_json,
        corpus.not_objects,
        corpus.deep_nesting,
        corpus.wrong_types,
        corpus.missing_fields,
        corpus.huge,
        corpus.long_ids,
        corpus.duplicated_keys,
        corpus.unicode,
        corpus.hostile_content_known,
        corpus.unknown_customers,
        corpus.replays,
    ]
    for step in steps:
        step()
    return corpus.items
