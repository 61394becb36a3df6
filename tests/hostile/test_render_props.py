"""``render_udesk_html`` + ``split_for_telegram`` on hostile content: never raise, entities
inside the text, and every chunk is accepted by Telegram's own formatting rules (the
Telegram simulator's validation, modelled on tdlib)."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st
from telegram import MessageEntity

from bridge.sandbox.telegram_sim import formatting as tg
from bridge.telegram.formatting import (
    CAPTION_LIMIT,
    TEXT_LIMIT,
    plain_fallback,
    render_udesk_html,
    render_with_flow_items,
    split_for_telegram,
    utf16_len,
)
from tests.hostile.strategies import html_docs

PROPS = settings(max_examples=200, deadline=None)


def accepted_by_telegram(text: str, entities: list[MessageEntity], limit: int) -> None:
    """What sendMessage / a caption would do with this chunk: no error, not empty, fits."""
    text.encode("utf-8")  # valid Unicode: no lone surrogates reach the JSON body
    size = utf16_len(text)
    assert 0 < size <= limit
    for e in entities:
        assert e.offset >= 0 and e.length > 0
        assert e.offset + e.length <= size, (text, e)
    shown, shown_entities = tg.render(text, None, [e.to_dict() for e in entities])
    assert shown, f"Telegram would answer 'message text is empty' for {text!r}"
    assert tg.utf16_len(shown) <= limit
    for e in shown_entities:
        assert e["offset"] + e["length"] <= tg.utf16_len(shown)


def check(html: str) -> None:
    rendered = render_udesk_html(html)
    size = utf16_len(rendered.text)
    for e in rendered.entities:
        assert e.offset >= 0 and e.length > 0 and e.offset + e.length <= size
    for url in rendered.images:
        assert url.lower().startswith(("http://", "https://"))
    for limit in (TEXT_LIMIT, CAPTION_LIMIT):
        for chunk, entities in split_for_telegram(rendered.text, rendered.entities, limit):
            accepted_by_telegram(chunk, entities, limit)
    # What the gateway sends when Telegram refuses the formatted version.
    fallback = plain_fallback(html)[:TEXT_LIMIT]
    if fallback.strip():
        fallback.encode("utf-8")


@PROPS
@given(st.text(max_size=3000))
@example("\ud800\udc00\ud800")
@example("&#xD800;&#0;&#1114112;")
@example("\x00\x01\x1b\x7f\x85")
@example(" \u3000\u2028 ")
def test_arbitrary_text(text: str) -> None:
    check(text)


@PROPS
@given(html_docs)
@example('<a href="javascript:alert(1)">click</a><script>alert(1)</script>')
@example("<b>" * 5000 + "deep")
@example("<div>" * 150 + "x" + "</div>" * 150)
@example("<pre>" + "x" * 9000 + "</pre>")
@example("<b>👍🏽</b>" * 3000)
@example("<blockquote><blockquote>q</blockquote></blockquote>")
@example("<pre><code><b>x</b></code></pre>")
@example("<a href='https://e.com'>   </a><b>\n</b>")
@example('<img src="https://e.com/1.png"><img src="file:///etc/passwd">')
def test_html_from_a_tag_alphabet(html: str) -> None:
    check(html)


@PROPS
@given(html_docs)
def test_urobot_flow_content(html: str) -> None:
    rendered, items = render_with_flow_items(html)
    for chunk, entities in split_for_telegram(rendered.text, rendered.entities, TEXT_LIMIT):
        accepted_by_telegram(chunk, entities, TEXT_LIMIT)
    for item in items:
        assert isinstance(item.flow_id, int)
