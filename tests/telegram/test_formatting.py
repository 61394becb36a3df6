"""What a Telegram customer sees for Udesk content, and what Udesk gets from Telegram."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from telegram import Chat, Message, MessageEntity

from bridge.telegram.formatting import (
    CAPTION_LIMIT,
    MAX_HTML_CHARS,
    TEXT_LIMIT,
    FlowItem,
    RenderedText,
    extract_flow_items,
    plain_fallback,
    render_udesk_html,
    render_with_flow_items,
    split_for_telegram,
    telegram_to_udesk_html,
    utf16_len,
)

MODEST = settings(max_examples=200, deadline=None)


def covered(text: str, entity: MessageEntity) -> str:
    """The characters an entity covers, the way Telegram counts (UTF-16)."""
    raw = text.encode("utf-16-le")
    return raw[2 * entity.offset : 2 * (entity.offset + entity.length)].decode("utf-16-le")


def spans(rendered: RenderedText) -> list[tuple[str, str]]:
    return [(e.type, covered(rendered.text, e)) for e in rendered.entities]


def assert_reassembles(text: str, chunks: list[tuple[str, list[MessageEntity]]]) -> list[int]:
    """The split contract: text == w0 + c1 + w1 + ... + cn + wn, each wi whitespace-only,
    each chunk non-empty with no whitespace at its ends.  Returns the chunks' start indices."""
    starts = []
    pos = 0
    for chunk, _ in chunks:
        assert chunk
        assert chunk == chunk.strip()
        while pos < len(text) and text[pos].isspace():
            pos += 1
        assert text.startswith(chunk, pos), (text, chunk, pos)
        starts.append(pos)
        pos += len(chunk)
    assert text[pos:].strip() == ""
    return starts


# --------------------------------------------------------------------------- rendering


def test_utf16_len_counts_astral_characters_twice() -> None:
    assert utf16_len("") == 0
    assert utf16_len("abc") == 3
    assert utf16_len("中文") == 2
    assert utf16_len("😀") == 2
    assert utf16_len("👍🏽") == 4


def test_bold_italic_link_offsets_with_emoji_and_cjk() -> None:
    rendered = render_udesk_html(
        '😀 <b>你好</b> 🎉🎉 <i>wörld</i> <a href="https://example.com/a?b=1&amp;c=2">链接 😀</a>!'
    )
    assert rendered.text == "😀 你好 🎉🎉 wörld 链接 😀!"
    assert spans(rendered) == [("bold", "你好"), ("italic", "wörld"), ("text_link", "链接 😀")]
    bold, italic, link = rendered.entities
    assert (bold.offset, bold.length) == (3, 2)  # the emoji before it counts as 2
    assert (italic.offset, italic.length) == (11, 5)
    assert (link.offset, link.length) == (17, 5)
    assert link.url == "https://example.com/a?b=1&c=2"
    assert all(isinstance(e, MessageEntity) for e in rendered.entities)


def test_supported_formatting_maps_to_telegram_entities() -> None:
    rendered = render_udesk_html(
        "<p><strong>s</strong> <em>e</em> <u>u</u> <del>d</del> <code>c</code> "
        '<span class="tg-spoiler">sp</span> <a href="mailto:a@b.c">m</a></p>'
        '<pre><code class="language-python">x = 1\n    y = 2</code></pre>'
    )
    assert rendered.text == "s e u d c sp m\n\nx = 1\n    y = 2"
    assert spans(rendered) == [
        ("bold", "s"),
        ("italic", "e"),
        ("underline", "u"),
        ("strikethrough", "d"),
        ("code", "c"),
        ("spoiler", "sp"),
        ("text_link", "m"),
        ("pre", "x = 1\n    y = 2"),
    ]
    assert rendered.entities[-1].language == "python"


def test_script_style_iframe_event_handlers_and_javascript_links_are_removed() -> None:
    rendered = render_udesk_html(
        "<p>Hello<script>alert(1)</script><style>p{color:red}</style>"
        '<iframe src="https://evil"><script>alert(2)</script></iframe> '
        '<a href="javascript:alert(3)" onclick="alert(4)">click</a> '
        '<b onmouseover="alert(5)">bold</b> <a href="/relative">rel</a> '
        '<a href="data:text/html,x">data</a></p>'
    )
    assert rendered.text == "Hello click bold rel data"
    assert "alert" not in rendered.text
    assert spans(rendered) == [("bold", "bold")]  # no link survives


def test_images_in_rich_text_are_collected_and_removed() -> None:
    rendered = render_udesk_html(
        '<p>Here is the invoice: <img src="https://cdn.udesk.cn/a.png" alt="invoice"></p>'
        '<p><img src="http://cdn.udesk.cn/b.jpg"><img src="https://cdn.udesk.cn/a.png">'
        '<img src="javascript:alert(1)"><img src="data:image/png;base64,AAAA">'
        '<img src="/relative.png" onerror="alert(1)">Thanks</p>'
    )
    assert rendered.text == "Here is the invoice:\n\nThanks"
    assert rendered.images == ["https://cdn.udesk.cn/a.png", "http://cdn.udesk.cn/b.jpg"]


def test_image_only_rich_message_has_no_text() -> None:
    rendered = render_udesk_html('<p><img src="https://cdn.udesk.cn/only.png"></p>')
    assert rendered == RenderedText("", [], ["https://cdn.udesk.cn/only.png"])
    assert rendered.chunks() == []


def test_control_characters_do_not_break_formatting() -> None:
    rendered = render_udesk_html("<b>a\x0cb\x01c\x00d</b>")
    assert rendered.text == "a bcd"
    assert spans(rendered) == [("bold", "a bcd")]


def test_relative_urls_resolve_against_base_url_when_given() -> None:
    rendered = render_udesk_html(
        '<a href="/kb/1">kb</a><img src="/i.png">', base_url="https://udesk.example"
    )
    assert rendered.entities[0].url == "https://udesk.example/kb/1"
    assert rendered.images == ["https://udesk.example/i.png"]


def test_unknown_tags_keep_their_text() -> None:
    rendered = render_udesk_html(
        "<font color=red>red</font> <marquee>moving</marquee> <custom-tag>custom</custom-tag>"
        " <sup>2</sup><!-- hidden comment -->"
    )
    assert rendered.text == "red moving custom 2"
    assert rendered.entities == []


def test_block_structure_becomes_lines_and_bullets() -> None:
    rendered = render_udesk_html(
        "<div>first</div><div>second</div><p>para</p>one<br>two"
        "<ul><li>apple</li><li>pear</li></ul><ol><li>x</li><li>y</li></ol>"
        "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></table>"
    )
    assert rendered.text == (
        "first\nsecond\n\npara\n\none\ntwo\n• apple\n• pear\n1. x\n2. y\na b\nc d"
    )


def test_html_whitespace_collapses_like_a_browser() -> None:
    rendered = render_udesk_html("<p>\n  Hello\n   <b>big</b>\n  world  </p>\n\n<p>next</p>")
    assert rendered.text == "Hello big world\n\nnext"
    assert spans(rendered) == [("bold", "big")]


def test_plain_text_keeps_its_newlines_and_decodes_entities() -> None:
    rendered = render_udesk_html("Hello,\n\nyour order   #12 ships today.\r\nA &amp; B < C > D\n")
    assert rendered.text == "Hello,\n\nyour order   #12 ships today.\nA & B < C > D"
    assert rendered.entities == []


def test_inline_markup_with_newlines_keeps_line_breaks() -> None:
    rendered = render_udesk_html("Hi <b>Anna</b>,\nyour code is <code>1234</code>\nBye")
    assert rendered.text == "Hi Anna,\nyour code is 1234\nBye"
    assert spans(rendered) == [("bold", "Anna"), ("code", "1234")]


def test_blockquote_gets_its_own_lines_and_is_not_nested() -> None:
    rendered = render_udesk_html(
        "before<blockquote>quoted<blockquote>inner</blockquote></blockquote>after"
    )
    assert rendered.text == "before\nquoted\ninner\nafter"
    assert spans(rendered) == [("blockquote", "quoted\ninner")]


def test_entities_never_cover_trailing_whitespace() -> None:
    rendered = render_udesk_html("<b>foo </b><br>bar <i> baz </i>")
    assert rendered.text == "foo\nbar baz"
    assert spans(rendered) == [("bold", "foo"), ("italic", "baz")]


def test_unclosed_tags_and_entities() -> None:
    rendered = render_udesk_html("<div><b>unclosed <i>tags &lt;x&gt; &copy; &#x1F600;")
    assert rendered.text == "unclosed tags <x> © 😀"
    assert spans(rendered) == [("bold", "unclosed tags <x> © 😀"), ("italic", "tags <x> © 😀")]


def test_deeply_nested_markup_falls_back_to_plain_text_quickly() -> None:
    started = time.monotonic()
    rendered = render_udesk_html("<span><div>" * 2000 + "deep" + "</div></span>" * 2000)
    assert rendered.text == "deep"
    assert rendered.entities == []
    assert time.monotonic() - started < 5


def test_huge_input_is_bounded() -> None:
    rendered = render_udesk_html("<p>" + "word <b>bold</b> " * 20_000 + "</p>")
    assert rendered.text.endswith("…")
    assert len(rendered.text) <= MAX_HTML_CHARS
    chunks = rendered.chunks()
    assert all(utf16_len(chunk) <= TEXT_LIMIT for chunk, _ in chunks)


def test_empty_and_whitespace_input() -> None:
    assert render_udesk_html("") == RenderedText("")
    assert render_udesk_html("  \n ") == RenderedText("")
    assert render_udesk_html("<p> </p><br>").text == ""
    assert split_for_telegram("", []) == []
    assert split_for_telegram(" \n\t ", []) == []


# --------------------------------------------------------------------------- splitting


def test_5000_characters_split_in_two_with_bold_across_the_cut() -> None:
    text = ("word " * 1000).strip()  # 4999 characters
    bold = MessageEntity(MessageEntity.BOLD, offset=4000, length=500)
    link = MessageEntity(MessageEntity.TEXT_LINK, offset=0, length=4, url="https://x.y")
    chunks = split_for_telegram(text, [link, bold])
    assert len(chunks) == 2
    (first, first_entities), (second, second_entities) = chunks
    assert utf16_len(first) <= TEXT_LIMIT and utf16_len(second) <= TEXT_LIMIT
    assert first.endswith("word") and second.startswith("word")  # cut at a space
    assert first + " " + second == text
    cut = len(first) + 1
    assert [(e.type, e.offset, e.length) for e in first_entities] == [
        ("text_link", 0, 4),
        ("bold", 4000, len(first) - 4000),
    ]
    assert first_entities[0].url == "https://x.y"
    assert [(e.type, e.offset, e.length) for e in second_entities] == [("bold", 0, 4500 - cut)]
    bold_text = covered(first, first_entities[1]) + " " + covered(second, second_entities[0])
    assert bold_text == text[4000:4500]


def test_split_prefers_paragraph_then_line_then_sentence() -> None:
    para = "a" * 3000 + "\n\n" + "b" * 500 + "\n" + "c" * 1000
    assert [len(c) for c, _ in split_for_telegram(para, [])] == [3000, 1501]
    line = "a" * 3000 + "\n" + "b" * 500 + ". " + "c" * 1000
    assert [len(c) for c, _ in split_for_telegram(line, [])] == [3000, 1502]
    sentence = "a" * 3000 + ". " + "b" * 500 + " " + "c" * 1000
    chunks = split_for_telegram(sentence, [])
    assert chunks[0][0] == "a" * 3000 + "."
    # A break in the first half of the window is only used when nothing better exists.
    early = "a" * 10 + "\n\n" + "b" * 3000 + " " + "c" * 2000
    assert [len(c) for c, _ in split_for_telegram(early, [])] == [3012, 2000]


def test_caption_split_at_1024() -> None:
    caption = "Привет, мир! " * 200
    chunks = split_for_telegram(caption, [], limit=CAPTION_LIMIT)
    assert len(chunks) == 3
    assert all(utf16_len(chunk) <= CAPTION_LIMIT for chunk, _ in chunks)
    assert all(chunk.endswith("!") for chunk, _ in chunks)  # sentence ends
    assert_reassembles(caption, chunks)


def test_emoji_at_the_boundary_is_never_split() -> None:
    text = "a" * 1023 + "😀" + "b" * 10  # the emoji occupies units 1023-1024
    chunks = split_for_telegram(text, [MessageEntity("italic", 1020, 6)], limit=1024)
    assert [chunk for chunk, _ in chunks] == ["a" * 1023, "😀" + "b" * 10]
    assert [(e.offset, e.length) for e in chunks[0][1]] == [(1020, 3)]
    assert [(e.offset, e.length) for e in chunks[1][1]] == [(0, 3)]
    assert covered(chunks[1][0], chunks[1][1][0]) == "😀b"


def test_emoji_only_text_splits_between_whole_emoji() -> None:
    text = "😀" * 3000
    chunks = split_for_telegram(text, [])
    assert [len(chunk) for chunk, _ in chunks] == [2048, 952]
    assert "".join(chunk for chunk, _ in chunks) == text


def test_hard_cut_keeps_zwj_sequences_and_combining_marks_together() -> None:
    family = "👨\u200d👩\u200d👧"
    text = "x" * 1018 + family + "y"
    chunks = split_for_telegram(text, [], limit=1024)
    assert chunks[0][0] == "x" * 1018
    assert chunks[1][0] == family + "y"
    accented = "x" * 1023 + "e\u0301" + "z"
    assert split_for_telegram(accented, [], limit=1024)[1][0] == "e\u0301z"


def test_split_rejects_absurd_limits() -> None:
    with pytest.raises(ValueError):
        split_for_telegram("abc", [], limit=1)


# --------------------------------------------------------------------------- fallback


def test_plain_fallback_strips_every_tag_but_keeps_text_and_lines() -> None:
    html = (
        "<p>Hello <b>wor</b>ld &amp; co</p><script>alert(1)</script>"
        "<ul><li>one</li><li>two</li></ul><a href='javascript:x'>link</a> &lt;3"
    )
    assert plain_fallback(html) == "Hello world & co\n\n• one\n• two\nlink <3"
    assert plain_fallback("line 1\nline 2 &gt; 1") == "line 1\nline 2 > 1"
    table = "<table><tr><th>k</th><th>v</th></tr><tr><td>a</td><td>1</td></tr></table>"
    assert plain_fallback(table) == "k v\na 1"
    assert plain_fallback("") == ""


# --------------------------------------------------------------------------- flow items

DOC_FLOW = (
    '<p>Please choose:</p><p><b data-type="2" class="flow-item" data-id="81" '
    'data-robotid="54">Flow subitem A</b></p>'
)


def test_flow_items_extracted_from_the_doc_example() -> None:
    assert extract_flow_items(DOC_FLOW) == [
        FlowItem(flow_id=81, title="Flow subitem A", robot_id=54)
    ]


def test_rest_of_the_answer_is_rendered_without_flow_items() -> None:
    html = DOC_FLOW + (
        '\n<p><span data-type="2" data-id="82">Flow &amp; <i>B</i>\n</span></p>'
        '<p><b data-type="2" data-id="81">duplicate</b><b data-type="1" data-id="9">other</b>'
        '<b data-type="2" data-id="x">bad id</b><b data-type="2" data-id="83"> </b></p>'
    )
    rendered, items = render_with_flow_items(html)
    assert items == [
        FlowItem(81, "Flow subitem A", 54),
        FlowItem(82, "Flow & B", None),
    ]
    assert rendered.text == "Please choose:\n\notherbad id"
    assert spans(rendered) == [("bold", "other"), ("bold", "bad id")]


def test_unclosed_flow_item_runs_to_the_end() -> None:
    assert extract_flow_items('<b data-type="2" data-id="7">Last <i>one') == [
        FlowItem(7, "Last one")
    ]
    assert extract_flow_items("<![bogus[ <b data-type=2 data-id=1>x</b>") is not None


# --------------------------------------------------------------------------- Telegram -> Udesk


def test_telegram_html_is_sanitised_for_udesk() -> None:
    ptb_html = (
        '<b>bold</b> <i>it</i> <u>u</u> <s>s</s> <span class="tg-spoiler">sp</span>\n'
        '<a href="https://example.com/?a=1&amp;b=2">link</a> <a href="tg://user?id=1">Ann</a> '
        '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji> '
        '<a href="https://x" onclick="steal()">x</a><script>alert(1)</script>\n'
        '<pre><code class="language-python">a &lt; b</code></pre><blockquote>q</blockquote>'
    )
    assert telegram_to_udesk_html(ptb_html) == (
        "<b>bold</b> <i>it</i> <u>u</u> <s>s</s> <span>sp</span><br>"
        '<a href="https://example.com/?a=1&amp;b=2">link</a> Ann 👍 '
        '<a href="https://x">x</a><br><pre><code>a &lt; b</code></pre><blockquote>q</blockquote>'
    )
    assert telegram_to_udesk_html("") == ""
    assert telegram_to_udesk_html("plain &lt;text&gt;\nline") == "plain &lt;text&gt;<br>line"


def test_customer_message_entities_reach_udesk_as_html() -> None:
    message = Message(
        message_id=1,
        date=datetime.now(UTC),
        chat=Chat(id=1, type=Chat.PRIVATE),
        text="Hi 😀 bold <tag> & link\nsecond line",
        entities=[
            MessageEntity(MessageEntity.BOLD, offset=6, length=4),
            MessageEntity(MessageEntity.TEXT_LINK, offset=19, length=4, url="https://e.x/?q=1"),
        ],
    )
    assert telegram_to_udesk_html(message.text_html) == (
        'Hi 😀 <b>bold</b> &lt;tag&gt; &amp; <a href="https://e.x/?q=1">link</a><br>second line'
    )


# --------------------------------------------------------------------------- properties

TAGS = [
    "<b>", "</b>", "<i>", "</i>", "<u>", "<s>", "<code>", "</code>", "<pre>", "</pre>",
    "<p>", "</p>", "<div>", "</div>", "<br>", "<ul>", "<ol>", "<li>", "</li>", "</ul>",
    "<blockquote>", "</blockquote>", "<table><tr><td>", "</td><td>", "<h1>", "</h1>",
    '<a href="https://e.x/">', '<a href="javascript:alert(1)">', "</a>", '<img src="https://i/1.png">',
    "<script>", "</script>", "<style>", "<!--", "-->", "<unknown>", "&amp;", "&lt;", "&#128512;",
    '<span class="tg-spoiler">', "</span>", " ", "\n", "😀", "中文", "a", "word. ", "<", ">",
    '<b data-type="2" data-id="5">', "<![CDATA[", "<ol start=x type=z>", '<li value="v">',
]  # fmt: skip
html_ish = st.lists(st.one_of(st.sampled_from(TAGS), st.text(max_size=6)), max_size=40).map("".join)


def assert_entities_valid(text: str, entities: list[MessageEntity]) -> None:
    total = utf16_len(text)
    for entity in entities:
        assert entity.offset >= 0 and entity.length > 0
        assert entity.offset + entity.length <= total
        covered(text, entity)  # on code-point boundaries: decodes without error
        if entity.type == MessageEntity.TEXT_LINK:
            assert entity.url and entity.url.split(":")[0].lower() in {
                "http",
                "https",
                "mailto",
                "tg",
            }


@MODEST
@given(st.one_of(st.text(), html_ish))
def test_render_never_raises_and_entities_fit(source: str) -> None:
    rendered = render_udesk_html(source)
    assert rendered.text == rendered.text.strip()
    assert_entities_valid(rendered.text, rendered.entities)
    for limit in (TEXT_LIMIT, 16):
        chunks = rendered.chunks(limit)
        assert_reassembles(rendered.text, chunks)
        for chunk, entities in chunks:
            assert utf16_len(chunk) <= limit
            assert_entities_valid(chunk, entities)
    plain_fallback(source)
    extract_flow_items(source)
    render_with_flow_items(source)
    telegram_to_udesk_html(source)


@st.composite
def text_with_entities(draw: st.DrawFn) -> tuple[str, list[MessageEntity]]:
    text = draw(st.text(alphabet=st.sampled_from("ab c.\n😀中\u0301\u200d"), max_size=120))
    units = [0]
    for ch in text:
        units.append(units[-1] + utf16_len(ch))
    entities = []
    for _ in range(draw(st.integers(0, 4))):
        lo = draw(st.integers(0, len(text)))
        hi = draw(st.integers(lo, len(text)))
        if hi > lo:
            entities.append(MessageEntity("bold", units[lo], units[hi] - units[lo]))
    return text, entities


@MODEST
@given(text_with_entities(), st.integers(2, 40))
def test_split_property(data: tuple[str, list[MessageEntity]], limit: int) -> None:
    text, entities = data
    chunks = split_for_telegram(text, entities, limit)
    starts = assert_reassembles(text, chunks)
    for (chunk, chunk_entities), start in zip(chunks, starts, strict=True):
        assert utf16_len(chunk) <= limit
        assert_entities_valid(chunk, chunk_entities)
        # Exactly the parts of the original entities that fall inside the chunk.
        base, end = utf16_len(text[:start]), utf16_len(text[: start + len(chunk)])
        expected = []
        for e in entities:
            lo, hi = max(e.offset, base), min(e.offset + e.length, end)
            if hi > lo:
                expected.append((lo - base, hi - lo))
        assert [(e.offset, e.length) for e in chunk_entities] == expected


@MODEST
@given(st.text())
def test_split_any_text_reassembles(text: str) -> None:
    for limit in (2, 7, TEXT_LIMIT):
        chunks = split_for_telegram(text, [], limit)
        assert_reassembles(text, chunks)
        assert all(utf16_len(chunk) <= limit for chunk, _ in chunks)
