"""Udesk's HTML (agent content, urobot answers) as neutral rich text, free of wire formats.

:func:`parse_udesk_html` sanitises agent content with nh3 (allowlist of tags, attributes and
URL schemes) and renders it with sulguk into plain text plus :class:`Span` objects (entity
type names and UTF-16 offsets, as the Bot API counts them); :func:`plain_fallback` is the
tag-free text for when the formatted version is refused.  Urobot answers carry clickable
"flow items", pulled out by :func:`extract_flow_items` / :func:`without_flow_items`.

Both edges use it: ``bridge.udesk`` reads urobot answers with it, ``bridge.telegram.formatting``
turns its spans into Telegram entities and messages.  Pure functions only: no I/O, no
aiohttp, no telegram, no database.
"""

from __future__ import annotations

import html as htmllib
import logging
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from itertools import accumulate
from typing import Any
from urllib.parse import urljoin

import nh3
import sulguk

log = logging.getLogger(__name__)

#: Input beyond this many characters is cut off (with "…") before parsing: HTML parsing of
#: hostile input (deep nesting) is super-linear, and 50k characters is already ~13 messages.
MAX_HTML_CHARS = 50_000
_ELLIPSIS = "…"
#: Deeper markup is rendered as plain text: sulguk recurses per level and html5lib slows down
#: quadratically; no legitimate message nests anywhere near this deep.
MAX_NESTING = 100

_LINK_SCHEMES = frozenset({"http", "https", "mailto", "tg"})
_IMAGE_SCHEMES = frozenset({"http", "https"})

# Tags sulguk renders natively (everything else must be stripped or renamed before it runs:
# sulguk raises on unknown tags).  No attributes except the ones listed in _RENDER_ATTRIBUTES.
_INLINE_TAGS = {
    "a", "b", "strong", "i", "em", "cite", "var", "u", "ins", "s", "strike", "del",
    "code", "kbd", "samp", "tt", "span", "tg-spoiler", "q", "img", "br", "wbr",
}  # fmt: skip
_BLOCK_TAGS = {
    "p", "div", "section", "header", "footer", "main", "nav", "pre", "blockquote", "ul",
    "ol", "li", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "details", "summary",
}  # fmt: skip
# Block-level tags sulguk does not know: allowed through nh3 (attribute-free) and renamed.
_RENAMED_BLOCK_TAGS = {
    "table", "thead", "tbody", "tfoot", "tr", "caption", "dl", "dt", "dd", "figure",
    "figcaption", "article", "aside", "address", "center",
}  # fmt: skip
_CELL_TAGS = {"td", "th"}
_RENDER_TAGS = _INLINE_TAGS | _BLOCK_TAGS | _RENAMED_BLOCK_TAGS | _CELL_TAGS
_RENDER_ATTRIBUTES = {
    "a": {"href"},
    "img": {"src"},
    "span": {"class"},
    "code": {"class"},
    "pre": {"class"},
    "blockquote": {"expandable"},
}
# Removed together with their content (raw-text elements would otherwise leak as text).
_DROP_CONTENT_TAGS = {
    "script", "style", "iframe", "object", "embed", "noscript", "noembed", "noframes",
    "template", "textarea", "select", "title", "head", "xmp", "svg", "math",
}  # fmt: skip
_CLASS_TOKEN = re.compile(r"tg-spoiler|language-[\w+#.-]{1,32}")

_RENAME_RE = re.compile(
    r"<(/?)(%s)>" % "|".join(sorted(_RENAMED_BLOCK_TAGS | _CELL_TAGS))  # noqa: UP031
)
_BLOCKQUOTE_OPEN_RE = re.compile(r'<blockquote(?: expandable="")?>')
_CONTROL_CHARS_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_TAG_TOKEN_RE = re.compile(r"<(/?)([a-z][a-z0-9-]*)[^>]*>")
_VOID_TAGS = frozenset({"br", "wbr", "hr", "img"})
_HAS_TAG_RE = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>|<!--")
_BLOCK_MARKUP_RE = re.compile(
    r"<(?:%s)[\s/>]" % "|".join(sorted(_BLOCK_TAGS | _RENAMED_BLOCK_TAGS | {"br"}))  # noqa: UP031
)

# The entity types kept from sulguk's output: Bot API entity type names, which sulguk emits
# (telegram.MessageEntity's constants are these same strings).
_TEXT_LINK, _PRE = "text_link", "pre"
_CODE_TYPES = frozenset({"code", _PRE})
_QUOTE_TYPES = frozenset({"blockquote", "expandable_blockquote"})
_ENTITY_TYPES = frozenset(
    {"bold", "italic", "underline", "strikethrough", "spoiler", _TEXT_LINK}
    | _CODE_TYPES
    | _QUOTE_TYPES
)


@dataclass(frozen=True, slots=True)
class Span:
    """A formatted range of :attr:`RichText.text`: a Bot API entity type name (``bold``,
    ``text_link``, ``pre``, ...), offsets in UTF-16 code units."""

    type: str
    offset: int
    length: int
    url: str | None = None
    language: str | None = None


@dataclass(frozen=True, slots=True)
class RichText:
    """Parsed agent content: ``text`` with formatted ``spans`` and image URLs.

    ``images`` are the http(s) ``<img src>`` URLs found in rich content, in document order and
    de-duplicated; the images themselves are removed from ``text``.  ``text`` is stripped at
    its end; rendered HTML may still start with white space (the renderer trims it together
    with its spans).
    """

    text: str
    spans: list[Span] = field(default_factory=list)
    images: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FlowItem:
    """A urobot flow choice (``data-type="2"`` element): becomes a button titled ``title``."""

    flow_id: int
    title: str
    robot_id: int | None = None


# --------------------------------------------------------------------------- input handling


def normalise_input(raw: str | None) -> str:
    """Valid Unicode (lone surrogates -> U+FFFD), unified newlines, bounded length."""
    if not raw:
        return ""
    text = raw.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Control characters are invisible in Telegram and break the XML tree sulguk builds on.
    text = _CONTROL_CHARS_RE.sub(lambda m: " " if m[0] in "\x0b\x0c" else "", text)
    if len(text) > MAX_HTML_CHARS:
        log.warning("udesk content of %d chars truncated to %d", len(text), MAX_HTML_CHARS)
        text = text[:MAX_HTML_CHARS] + _ELLIPSIS
    return text


def _looks_like_html(text: str) -> bool:
    return _HAS_TAG_RE.search(text) is not None


def _plain_text(text: str) -> str:
    """Plain (tag-free) Udesk text: entities decoded, newlines kept, ends trimmed."""
    return htmllib.unescape(text).strip()


def _scheme(url: str) -> str:
    head, sep, _ = url.partition(":")
    return head.strip().lower() if sep else ""


# --------------------------------------------------------------------------- rendering


def _sanitise_for_render(source: str, images: list[str], base_url: str | None) -> str:
    """nh3-clean ``source`` into HTML that sulguk renders safely; collects image URLs."""

    def attribute_filter(tag: str, attr: str, value: str) -> str | None:
        if tag == "img":
            url = urljoin(base_url, value) if base_url else value  # nh3 passes it unresolved
            if attr == "src" and _scheme(url) in _IMAGE_SCHEMES and url not in images:
                images.append(url)
            return None  # the <img> itself is dropped below
        if attr == "class":
            tokens = [t for t in value.split() if _CLASS_TOKEN.fullmatch(t)]
            return " ".join(tokens) or None
        if attr == "expandable":
            return ""
        return value

    cleaned = nh3.clean(
        source,
        tags=_RENDER_TAGS,
        clean_content_tags=_DROP_CONTENT_TAGS,
        attributes=_RENDER_ATTRIBUTES,
        attribute_filter=attribute_filter,
        url_schemes=set(_LINK_SCHEMES),
        url_relative=("rewrite_with_base", base_url) if base_url else "deny",
        link_rel=None,
        strip_comments=True,
    )
    # nh3 output is canonical: allowlisted tags without attributes serialise exactly like this.
    cleaned = cleaned.replace("<img>", "")
    cleaned = _RENAME_RE.sub(
        lambda m: f"<{m[1]}span>{' ' if m[1] else ''}" if m[2] in _CELL_TAGS else f"<{m[1]}div>",
        cleaned,
    )
    # sulguk renders a blockquote inline; Telegram shows it as a block, so give it its lines.
    cleaned = _BLOCKQUOTE_OPEN_RE.sub(r"<div>\g<0>", cleaned).replace(
        "</blockquote>", "</blockquote></div>"
    )
    if not _BLOCK_MARKUP_RE.search(cleaned):
        # Inline-only markup typed in the IM box: its newlines are real line breaks.
        cleaned = cleaned.replace("\n", "<br>")
    return cleaned


def _entity_kind(raw: dict[str, Any]) -> str | None:
    """The entity type for a sulguk entity, or None to drop it."""
    kind = raw.get("type")
    if kind not in _ENTITY_TYPES:
        return None
    if kind == _TEXT_LINK:
        url = raw.get("url")
        if not url or _scheme(url) not in _LINK_SCHEMES:
            return None
    return str(kind)


def _normalise_spans(text: str, raw_entities: list[Any]) -> list[Span]:
    """Convert sulguk entities, trim them to visible characters and drop invalid nesting.

    sulguk can leave an entity covering a trailing space/newline, or extending past the end of
    the text; Telegram rejects or mis-renders those.  Entities nested in ``pre``/``code`` and
    quotes nested in quotes are not allowed by Telegram and are dropped.
    """
    prefix = [0, *accumulate(2 if ord(ch) > 0xFFFF else 1 for ch in text)]
    index_of = {units: i for i, units in enumerate(prefix)}
    total = prefix[-1]

    spans: list[tuple[int, int, str, dict[str, Any]]] = []
    for raw in raw_entities:
        kind = _entity_kind(raw)
        if kind is None:
            continue
        offset, length = int(raw.get("offset", 0)), int(raw.get("length", 0))
        lo = index_of.get(min(max(offset, 0), total))
        hi = index_of.get(min(max(offset + length, 0), total))
        if lo is None or hi is None:  # not on a character boundary: should not happen
            continue
        while hi > lo and text[hi - 1].isspace():
            hi -= 1
        if kind not in _CODE_TYPES:
            while lo < hi and text[lo].isspace():
                lo += 1
        if hi > lo:
            spans.append((lo, hi, kind, raw))

    # Outer entities first.  sulguk emits an entity after its children, so for identical
    # ranges (``<pre><code>``) the later one is the outer one.
    order = {id(raw): i for i, raw in enumerate(raw_entities)}
    spans.sort(key=lambda s: (s[0], -s[1], -order[id(s[3])]))
    code_spans: list[tuple[int, int]] = []
    quote_spans: list[tuple[int, int]] = []
    result: list[Span] = []
    for lo, hi, kind, raw in spans:
        if any(a <= lo and hi <= b for a, b in code_spans):
            continue
        if kind in _QUOTE_TYPES:
            if any(a <= lo and hi <= b for a, b in quote_spans):
                continue
            quote_spans.append((lo, hi))
        if kind in _CODE_TYPES:
            code_spans.append((lo, hi))
        result.append(
            Span(
                type=kind,
                offset=prefix[lo],
                length=prefix[hi] - prefix[lo],
                url=raw.get("url") if kind == _TEXT_LINK else None,
                language=(raw.get("language") or None) if kind == _PRE else None,
            )
        )
    return result


def _max_depth(cleaned: str) -> int:
    """Nesting depth of nh3-canonical markup (void elements do not nest)."""
    depth = deepest = 0
    for match in _TAG_TOKEN_RE.finditer(cleaned):
        if match[1]:
            depth -= 1
        elif match[2] not in _VOID_TAGS:
            depth += 1
            deepest = max(deepest, depth)
    return deepest


def parse_udesk_html(html: str, *, base_url: str | None = None) -> RichText:
    """Udesk agent content (``message`` or ``rich``) as neutral rich text.

    * Content without any tag is plain text: HTML entities are decoded, newlines are kept.
    * HTML is sanitised with nh3 (scripts, styles, iframes, event handlers, and links other
      than http/https/mailto/tg disappear), then rendered with sulguk: whitespace collapses as
      in a browser; ``<p>``/``<div>``/``<br>``/lists/tables become line breaks and bullets;
      unsupported tags keep their text.  If the markup has no block-level tag at all (inline
      formatting typed in the IM box), its newlines are treated as line breaks.
    * ``<img>`` are removed; their http(s) ``src`` go to :attr:`RichText.images`.
    * Relative URLs are dropped unless ``base_url`` is given to resolve them.

    Never raises on bad input: if rendering fails (e.g. absurdly deep nesting) the result is
    :func:`plain_fallback` text without spans.  Input beyond :data:`MAX_HTML_CHARS` is cut.
    The text is stripped at its end only (see :class:`RichText`).
    """
    source = normalise_input(html)
    if not source.strip():
        return RichText("")
    if not _looks_like_html(source):
        return RichText(_plain_text(source))

    images: list[str] = []
    try:
        cleaned = _sanitise_for_render(source, images, base_url)
        if _max_depth(cleaned) > MAX_NESTING:
            raise RecursionError(f"markup nested deeper than {MAX_NESTING}")
        rendered = sulguk.transform_html(cleaned)
        text = rendered.text.rstrip()
        spans = _normalise_spans(text, list(rendered.entities))
    except Exception as exc:  # RecursionError on absurd nesting, sulguk internals, ...
        log.warning("udesk html rendering failed (%s); sending plain text", type(exc).__name__)
        return RichText(plain_fallback(source), [], images)
    return RichText(text, spans, images)


_FALLBACK_BREAK_RE = re.compile(
    r"<br>|</?(?:%s)>" % "|".join(sorted(_BLOCK_TAGS | _RENAMED_BLOCK_TAGS))  # noqa: UP031
)
_FALLBACK_TAG_RE = re.compile(r"<[^>]*>")
_FALLBACK_BREAKS_RE = re.compile(r"[ \t]*[\n\x01][\n\x01 \t]*")


def plain_fallback(html: str) -> str:
    """The text of ``html`` with every tag stripped and entities decoded; nothing else lost.

    Used when Telegram rejects the formatted rendering.  Block tags (``<p>``, ``<br>``, ``<li>``,
    ...) still become line breaks so the text stays readable; script/style content is dropped.
    """
    source = normalise_input(html)
    if not _looks_like_html(source):
        return _plain_text(source)
    # Only attribute-free block tags survive, so the regexes below see canonical markup.
    cleaned = nh3.clean(
        source,
        tags=_BLOCK_TAGS | _RENAMED_BLOCK_TAGS | _CELL_TAGS | {"br"},
        clean_content_tags=_DROP_CONTENT_TAGS,
        attributes={},
        link_rel=None,
    )
    if not _FALLBACK_BREAK_RE.search(cleaned):
        # Inline-only markup: its newlines are the line breaks (as in render_udesk_html).
        return htmllib.unescape(_FALLBACK_TAG_RE.sub("", cleaned)).strip()
    # Browser-like: source whitespace collapses, blocks break lines, paragraphs leave a blank
    # line (marked with \x01, which cannot occur in the input: control characters are gone).
    cleaned = re.sub(r"[ \t\n\f]+", " ", cleaned)
    cleaned = cleaned.replace("<li>", "\n• ").replace("</td>", " ").replace("</th>", " ")
    cleaned = _FALLBACK_BREAK_RE.sub(lambda m: "\x01" if m[0] in ("<p>", "</p>") else "\n", cleaned)
    text = _FALLBACK_TAG_RE.sub("", cleaned)
    text = _FALLBACK_BREAKS_RE.sub(lambda m: "\n\n" if "\x01" in m[0] else "\n", text)
    return htmllib.unescape(text).strip()


# --------------------------------------------------------------------------- urobot flow items


class _FlowParser(HTMLParser):
    """Finds ``data-type="2"`` elements: their id, title and source span."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self._source = source
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", source)]
        self.items: list[FlowItem] = []
        self.spans: list[tuple[int, int]] = []
        self._tag: str | None = None
        self._depth = 0
        self._start = 0
        self._ids: tuple[int, int | None] = (0, None)
        self._parts: list[str] = []

    def _offset(self) -> int:
        line, col = self.getpos()
        return self._line_starts[line - 1] + col

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._tag is not None:
            self._depth += tag == self._tag
            return
        values = dict(attrs)
        if (values.get("data-type") or "").strip() != "2":
            return
        flow_id = _to_int(values.get("data-id"))
        if flow_id is None:
            return
        self._tag, self._depth, self._start = tag, 1, self._offset()
        self._ids = (flow_id, _to_int(values.get("data-robotid")))
        self._parts = []

    def handle_endtag(self, tag: str) -> None:
        if self._tag is None or tag != self._tag:
            return
        self._depth -= 1
        if self._depth == 0:
            start = self._offset()
            close = self._source.find(">", start)
            self._finish(len(self._source) if close < 0 else close + 1)

    def handle_data(self, data: str) -> None:
        if self._tag is not None:
            self._parts.append(data)

    def _finish(self, end: int) -> None:
        title = " ".join("".join(self._parts).split())
        flow_id, robot_id = self._ids
        if title:
            self.items.append(FlowItem(flow_id=flow_id, title=title, robot_id=robot_id))
        self.spans.append((self._start, end))
        self._tag = None

    def close(self) -> None:
        super().close()
        if self._tag is not None:  # unclosed flow element runs to the end
            self._finish(len(self._source))


def _to_int(value: str | None) -> int | None:
    try:
        return int((value or "").strip())
    except ValueError:
        return None


def _parse_flow(html: str) -> tuple[str, _FlowParser]:
    source = normalise_input(html)
    parser = _FlowParser(source)
    try:
        parser.feed(source)
        parser.close()
    except Exception as exc:  # html.parser can still trip over bizarre declarations
        # Its messages quote the HTML (message content): only the type at WARNING.
        log.warning("flow item parsing stopped early (%s)", type(exc).__name__)
        log.debug("flow item parsing stopped early", exc_info=True)
    return source, parser


def extract_flow_items(html: str) -> list[FlowItem]:
    """Flow items of a urobot answer, in order, de-duplicated by ``flow_id``.

    >>> extract_flow_items('<p><b data-type="2" class="flow-item" data-id="81" '
    ...                    'data-robotid="54">Flow subitem A</b></p>')
    [FlowItem(flow_id=81, title='Flow subitem A', robot_id=54)]
    """
    _, parser = _parse_flow(html)
    seen: set[int] = set()
    items: list[FlowItem] = []
    for item in parser.items:
        if item.flow_id not in seen:
            seen.add(item.flow_id)
            items.append(item)
    return items


def without_flow_items(html: str) -> tuple[str, list[FlowItem]]:
    """A urobot answer as (its HTML without the flow items, the flow items)."""
    source, parser = _parse_flow(html)
    rest, last = [], 0
    for start, end in parser.spans:
        rest.append(source[last:start])
        last = end
    rest.append(source[last:])
    return "".join(rest), extract_flow_items(source)
