"""Text formatting between Udesk (HTML) and Telegram (text + entities).

Udesk -> Telegram: :func:`render_udesk_html` turns agent content, parsed by
:mod:`bridge.core.rich_text` (nh3 sanitising, sulguk rendering), into plain text plus
:class:`telegram.MessageEntity` objects (UTF-16 offsets).  :func:`split_for_telegram` cuts the
result into messages/captions that fit; :func:`plain_fallback` is the tag-free text to send when
Telegram still rejects the formatted version.  Urobot answers carry clickable "flow items",
pulled out by :func:`extract_flow_items` / :func:`render_with_flow_items`.

Telegram -> Udesk: :func:`telegram_to_udesk_html` makes PTB's ``Message.text_html`` /
``caption_html`` safe and acceptable for Udesk.

Pure functions only: no I/O, no aiohttp, no database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import nh3
from telegram import MessageEntity

from bridge.core.rich_text import (
    MAX_HTML_CHARS,
    MAX_NESTING,
    FlowItem,
    extract_flow_items,
    normalise_input,
    parse_udesk_html,
    plain_fallback,
    without_flow_items,
)
from bridge.telegram.splitting import (
    CAPTION_LIMIT,
    TEXT_LIMIT,
    clip_entities,
    split_for_telegram,
    utf16_len,
)

__all__ = [
    "CAPTION_LIMIT",
    "MAX_HTML_CHARS",
    "MAX_NESTING",
    "TEXT_LIMIT",
    "FlowItem",
    "RenderedText",
    "extract_flow_items",
    "plain_fallback",
    "render_udesk_html",
    "render_with_flow_items",
    "split_for_telegram",
    "telegram_to_udesk_html",
    "utf16_len",
]

_UDESK_TAGS = {
    "b", "strong", "i", "em", "u", "s", "del", "code", "pre", "a", "br", "blockquote", "span",
}  # fmt: skip
_UDESK_SCHEMES = {"http", "https", "mailto"}
_BARE_LINK_RE = re.compile(r"<a>(.*?)</a>", re.DOTALL)


@dataclass(frozen=True, slots=True)
class RenderedText:
    """Telegram-ready text: ``text`` with ``entities`` (UTF-16 offsets) and image URLs.

    ``images`` are the http(s) ``<img src>`` URLs found in rich content, in document order and
    de-duplicated; the images themselves are removed from ``text`` and should be sent as photos.
    ``text`` may exceed Telegram's limits: pass it through :meth:`chunks`.
    """

    text: str
    entities: list[MessageEntity] = field(default_factory=list)
    images: list[str] = field(default_factory=list)

    def chunks(self, limit: int = TEXT_LIMIT) -> list[tuple[str, list[MessageEntity]]]:
        """:func:`split_for_telegram` applied to this text (``CAPTION_LIMIT`` for captions)."""
        return split_for_telegram(self.text, self.entities, limit)


def render_udesk_html(html: str, *, base_url: str | None = None) -> RenderedText:
    """Render Udesk agent content (``message`` or ``rich``) as Telegram text + entities.

    The content is parsed by :func:`bridge.core.rich_text.parse_udesk_html` (see there: plain
    text, sanitised HTML, ``<img>`` to :attr:`RenderedText.images`, relative URLs dropped
    unless ``base_url`` resolves them, :func:`plain_fallback` text when rendering fails);
    its spans become :class:`telegram.MessageEntity` objects.  Never raises on bad input.
    """
    rich = parse_udesk_html(html, base_url=base_url)
    text = rich.text
    entities = [
        MessageEntity(
            type=span.type,
            offset=span.offset,
            length=span.length,
            url=span.url,
            language=span.language,
        )
        for span in rich.spans
    ]
    stripped = text.lstrip()
    if stripped != text:
        shift = utf16_len(text) - utf16_len(stripped)
        entities = clip_entities(entities, shift, utf16_len(text))
        text = stripped
    return RenderedText(text, entities, rich.images)


def render_with_flow_items(
    html: str, *, base_url: str | None = None
) -> tuple[RenderedText, list[FlowItem]]:
    """A urobot answer as (rendered text without the flow items, the flow items as buttons)."""
    rest, items = without_flow_items(html)
    return render_udesk_html(rest, base_url=base_url), items


# --------------------------------------------------------------------------- Telegram -> Udesk


def telegram_to_udesk_html(html_from_ptb: str) -> str:
    """Make PTB's ``Message.text_html``/``caption_html`` safe for Udesk.

    Keeps only b, strong, i, em, u, s, del, code, pre, a[href] (http/https/mailto), br,
    blockquote and span; anything else (custom emoji, spoiler classes, ``tg://`` mentions,
    links with other schemes) degrades to its text.  Newlines become ``<br>`` because Udesk
    renders the text as HTML.
    """
    if not html_from_ptb:
        return ""
    cleaned = nh3.clean(
        normalise_input(html_from_ptb),
        tags=_UDESK_TAGS,
        clean_content_tags={"script", "style"},
        attributes={"a": {"href"}},
        url_schemes=_UDESK_SCHEMES,
        url_relative="deny",
        link_rel=None,
    )
    # A link whose href was rejected is just its text (<a> cannot nest, so this pairs up).
    cleaned = _BARE_LINK_RE.sub(r"\1", cleaned)
    return cleaned.replace("\n", "<br>")
