"""Text formatting the way the Bot API server does it.

Telegram measures everything (entity offsets, lengths, the 4096/1024 limits) in UTF-16 code
units, reports parse errors with UTF-8 *byte* offsets into the original string, trims the
text after parsing and auto-detects URLs, mentions, hashtags and bot commands. A bot that
gets any of this wrong fails only against the real server, so the simulator reproduces the
rules (modelled on tdlib's ``MessageEntity.cpp``) rather than using a lenient HTML parser.

Entities are plain JSON-ready dicts in the Bot API shape:
``{"type": "bold", "offset": 0, "length": 4}`` plus ``url`` / ``language`` / ``user`` /
``custom_emoji_id`` where the type needs it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Entity = dict[str, Any]
# Resolves ``tg://user?id=N`` links to a User dict (None when the user is unknown).
UserLookup = Callable[[int], "dict[str, Any] | None"]

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024

ENTITY_TYPES = frozenset(
    {
        "mention",
        "hashtag",
        "cashtag",
        "bot_command",
        "url",
        "email",
        "phone_number",
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "blockquote",
        "expandable_blockquote",
        "code",
        "pre",
        "text_link",
        "text_mention",
        "custom_emoji",
    }
)
# Bold & co. may overlap anything; everything else ("continuous" in tdlib) may not be split.
SPLITTABLE = frozenset({"bold", "italic", "underline", "strikethrough", "spoiler"})
BLOCKQUOTES = frozenset({"blockquote", "expandable_blockquote"})
# Entities whose meaning is not their visible text; they survive whitespace-only content.
HIDDEN_DATA = frozenset({"text_link", "text_mention", "custom_emoji"})

# tdlib's sort priorities (lower first when offset and length are equal).
_PRIORITY: dict[str, int] = {
    "blockquote": 0,
    "expandable_blockquote": 0,
    "pre": 11,
    "code": 20,
    "text_link": 49,
    "text_mention": 49,
    "bold": 90,
    "italic": 91,
    "underline": 92,
    "strikethrough": 93,
    "spoiler": 94,
    "custom_emoji": 99,
}


class UnsupportedParseMode(ValueError):
    """parse_mode other than HTML, MarkdownV2 or Markdown."""


class EntityParseError(ValueError):
    """parse_mode text that the real server would reject; str(e) is tdlib's reason."""


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of every Telegram offset and limit."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _u16(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def _byte_offset(text: str, index: int) -> int:
    # Only computed on error paths, so the quadratic-looking slice is fine.
    return len(text[:index].encode("utf-8", "surrogatepass"))


def utf16_slice(text: str, offset: int, length: int) -> str:
    """The substring covered by an entity (offset/length in UTF-16 units)."""
    data = text.encode("utf-16-le", "surrogatepass")
    return data[offset * 2 : (offset + length) * 2].decode("utf-16-le", "surrogatepass")


def sort_entities(entities: list[Entity]) -> list[Entity]:
    """Telegram's order: by offset, longer (outer) first, then tdlib's type priority."""

    def key(e: Entity) -> tuple[int, int, int]:
        prio = _PRIORITY.get(e["type"], 50)
        if e["type"] == "pre" and e.get("language"):
            prio = 10
        return (e["offset"], -e["length"], prio)

    entities.sort(key=key)
    return entities


# --------------------------------------------------------------------------- links


def check_link(url: str) -> str | None:
    """Normalise an href like tdlib's ``get_checked_link``; None means "drop the entity"."""
    url = url.strip()
    if not url or any(ch.isspace() for ch in url):
        return None
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", url)
    if match:
        scheme = match.group(1).lower()
        if scheme in ("tg", "ton"):
            return url
        if scheme not in ("http", "https", "ftp"):
            return None
        rest = url[len(scheme) + 1 :]
        if not rest.startswith("//"):
            return None
        url = scheme + ":" + rest
    else:
        scheme = "http"
        url = "http://" + url
    hostpart = url.split("//", 1)[1]
    host = re.split(r"[/?#]", hostpart, maxsplit=1)[0]
    if not host or host.startswith((".", ":")):
        return None
    path_start = len(scheme) + 3 + len(host)
    if path_start == len(url):
        # The server re-serialises the URL, which always has at least "/" as its path.
        url += "/"
    return url


def link_user_id(url: str) -> int | None:
    match = re.fullmatch(r"tg://user\?id=(\d{1,15})", url.strip(), flags=re.IGNORECASE)
    return int(match.group(1)) if match else None


def _link_entity(
    offset: int, length: int, url: str, lookup_user: UserLookup | None
) -> Entity | None:
    user_id = link_user_id(url)
    if user_id is not None:
        user = lookup_user(user_id) if lookup_user else None
        if user is None:
            return None
        return {"type": "text_mention", "offset": offset, "length": length, "user": user}
    checked = check_link(url)
    if checked is None:
        return None
    return {"type": "text_link", "offset": offset, "length": length, "url": checked}


# --------------------------------------------------------------------------- HTML

_HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)
_SPACE = " \t\r\n\v\f"


def _decode_html_entity(text: str, pos: int) -> tuple[str, int] | None:
    """Decode ``&...`` at pos like tdlib: only lt/gt/amp/quot and numeric refs; ';' optional."""
    n = len(text)
    end = pos + 1
    if end < n and text[end] == "#":
        end += 1
        value = 0
        if end < n and text[end] == "x":
            end += 1
            while end < n and text[end] in "0123456789abcdefABCDEF":
                value = value * 16 + int(text[end], 16)
                end += 1
        else:
            while end < n and text[end].isascii() and text[end].isdigit():
                value = value * 10 + int(text[end])
                end += 1
        if value == 0 or value >= 0x10FFFF or end - pos >= 10:
            return None
        decoded = chr(value)
    else:
        while end < n and text[end].isascii() and text[end].isalpha():
            end += 1
        name = text[pos + 1 : end]
        named = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
        if name not in named:
            return None
        decoded = named[name]
    if end < n and text[end] == ";":
        end += 1
    return decoded, end


def parse_html(text: str, lookup_user: UserLookup | None = None) -> tuple[str, list[Entity]]:
    """Parse Bot API HTML into (plain text, entities) or raise EntityParseError."""
    out: list[str] = []
    u16 = 0
    entities: list[Entity] = []
    # (tag, argument, utf16 offset, index into out, begin byte offset, expandable)
    stack: list[tuple[str, str, int, int, bool]] = []
    n = len(text)
    i = 0
    while i < n:
        ch = text[i]
        if ch == "&":
            decoded = _decode_html_entity(text, i)
            if decoded is not None:
                out.append(decoded[0])
                u16 += _u16(decoded[0])
                i = decoded[1]
                continue
        if ch != "<":
            out.append(ch)
            u16 += _u16(ch)
            i += 1
            continue

        begin = i
        i += 1
        if i >= n or text[i] != "/":
            # A start tag: name runs to whitespace or '>'.
            while i < n and text[i] not in _SPACE and text[i] != ">":
                i += 1
            if i >= n:
                raise EntityParseError(
                    f"Unclosed start tag at byte offset {_byte_offset(text, begin)}"
                )
            tag = text[begin + 1 : i].lower()
            if tag not in _HTML_TAGS:
                raise EntityParseError(
                    f'Unsupported start tag "{tag}" at byte offset {_byte_offset(text, begin)}'
                )
            argument = ""
            expandable = False
            while i < n and text[i] != ">":
                while i < n and text[i] in _SPACE:
                    i += 1
                if i < n and text[i] == ">":
                    break
                attr_begin = i
                while i < n and text[i] not in _SPACE and text[i] not in "=>":
                    i += 1
                attr = text[attr_begin:i]
                if not attr:
                    raise EntityParseError(
                        f'Empty attribute name in the tag "{tag}" at byte offset '
                        f"{_byte_offset(text, begin)}"
                    )
                while i < n and text[i] in _SPACE:
                    i += 1
                if i < n and text[i] != "=":
                    # Valueless attributes exist only as <blockquote expandable>.
                    if tag == "blockquote" and attr.lower() == "expandable":
                        expandable = True
                        continue
                    raise EntityParseError(
                        "Expected equal sign in declaration of an attribute of the tag "
                        f'"{tag}" at byte offset {_byte_offset(text, begin)}'
                    )
                if i >= n:
                    raise EntityParseError(
                        f"Unclosed start tag at byte offset {_byte_offset(text, begin)}"
                    )
                i += 1
                while i < n and text[i] in _SPACE:
                    i += 1
                if i >= n:
                    raise EntityParseError(
                        f'Unclosed start tag "{tag}" at byte offset {_byte_offset(text, begin)}'
                    )
                if text[i] not in "'\"":
                    token_begin = i
                    while i < n and ((text[i].isascii() and text[i].isalnum()) or text[i] in ".-"):
                        i += 1
                    value = text[token_begin:i].lower()
                    if i < n and text[i] not in _SPACE and text[i] != ">":
                        raise EntityParseError(
                            "Unexpected end of name token at byte offset "
                            f"{_byte_offset(text, token_begin)}"
                        )
                else:
                    quote = text[i]
                    i += 1
                    chars: list[str] = []
                    while i < n and text[i] != quote:
                        if text[i] == "&":
                            decoded = _decode_html_entity(text, i)
                            if decoded is not None:
                                chars.append(decoded[0])
                                i = decoded[1]
                                continue
                        chars.append(text[i])
                        i += 1
                    if i < n:
                        i += 1
                    value = "".join(chars)
                if i >= n:
                    raise EntityParseError(
                        f"Unclosed start tag at byte offset {_byte_offset(text, begin)}"
                    )
                attr = attr.lower()
                if tag == "a" and attr == "href":
                    argument = value
                elif tag == "code" and attr == "class" and value.startswith("language-"):
                    argument = value[len("language-") :]
                elif tag == "span" and attr == "class" and value.startswith("tg-"):
                    argument = value[len("tg-") :]
                elif tag == "tg-emoji" and attr == "emoji-id":
                    argument = value
            if tag == "span" and argument != "spoiler":
                raise EntityParseError(
                    'Tag "span" must have class "tg-spoiler" at byte offset '
                    f"{_byte_offset(text, begin)}"
                )
            stack.append((tag, argument, u16, len(out), expandable))
            i += 1  # skip '>'
            continue

        # An end tag.
        if not stack:
            raise EntityParseError(f"Unexpected end tag at byte offset {_byte_offset(text, begin)}")
        while i < n and text[i] not in _SPACE and text[i] != ">":
            i += 1
        end_tag = text[begin + 2 : i].lower()
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n or text[i] != ">":
            raise EntityParseError(f"Unclosed end tag at byte offset {_byte_offset(text, begin)}")
        i += 1
        tag, argument, start, out_index, expandable = stack.pop()
        if end_tag and end_tag != tag:
            raise EntityParseError(
                f"Unmatched end tag at byte offset {_byte_offset(text, begin)}, "
                f'expected "</{tag}>", found "</{end_tag}>"'
            )
        length = u16 - start
        if length <= 0:
            continue
        simple = {
            "b": "bold",
            "strong": "bold",
            "i": "italic",
            "em": "italic",
            "u": "underline",
            "ins": "underline",
            "s": "strikethrough",
            "strike": "strikethrough",
            "del": "strikethrough",
            "tg-spoiler": "spoiler",
            "span": "spoiler",
        }
        if tag in simple:
            entities.append({"type": simple[tag], "offset": start, "length": length})
        elif tag == "tg-emoji":
            if not argument.isdigit() or int(argument) == 0:
                raise EntityParseError("Invalid custom emoji identifier specified")
            entities.append(
                {
                    "type": "custom_emoji",
                    "offset": start,
                    "length": length,
                    "custom_emoji_id": argument,
                }
            )
        elif tag == "a":
            url = argument or "".join(out[out_index:])
            link = _link_entity(start, length, url, lookup_user)
            if link is not None:
                entities.append(link)
        elif tag == "blockquote":
            kind = "expandable_blockquote" if expandable else "blockquote"
            entities.append({"type": kind, "offset": start, "length": length})
        elif tag == "pre":
            last = entities[-1] if entities else None
            if (
                last is not None
                and last["type"] == "code"
                and last["offset"] == start
                and last["length"] == length
                and last.get("language")
            ):
                # <pre><code class="language-x">…</code></pre> is one pre entity.
                last["type"] = "pre"
            else:
                entities.append({"type": "pre", "offset": start, "length": length})
        elif tag == "code":
            last = entities[-1] if entities else None
            if (
                last is not None
                and last["type"] == "pre"
                and last["offset"] == start
                and last["length"] == length
                and argument
            ):
                last["language"] = argument
            else:
                code: Entity = {"type": "code", "offset": start, "length": length}
                if argument:
                    code["language"] = argument  # dropped below unless a <pre> claims it
                entities.append(code)
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    for entity in entities:
        if entity["type"] == "code":
            entity.pop("language", None)
    return "".join(out), sort_entities(entities)


# --------------------------------------------------------------------------- MarkdownV2

_MD2_RESERVED = "_*[]()~`>#+-=|{}.!\n"
_MD2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "pre_code": "PreCode",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
    "blockquote": "BlockQuote",
}


def parse_markdown_v2(text: str, lookup_user: UserLookup | None = None) -> tuple[str, list[Entity]]:
    """Parse MarkdownV2 (reserved characters must be escaped) or raise EntityParseError."""
    out: list[str] = []
    u16 = 0
    entities: list[Entity] = []
    # [kind, argument, utf16 offset, byte-begin index (chars), index into out]
    stack: list[list[Any]] = []
    have_blockquote = False
    n = len(text)

    def at(k: int) -> str:
        return text[k] if k < n else ""

    def reserved_error(k: int) -> EntityParseError:
        return EntityParseError(
            f"Character '{text[k]}' is reserved and must be escaped with the preceding '\\'"
        )

    i = 0
    while i < n:
        ch = text[i]
        if ch == "\\" and at(i + 1) and 0 < ord(at(i + 1)) <= 126:
            out.append(text[i + 1])
            u16 += 1
            i += 2
            continue
        reserved = _MD2_RESERVED
        if stack and stack[-1][0] in ("code", "pre", "pre_code"):
            reserved = "`"
        if ch not in reserved:
            out.append(ch)
            u16 += _u16(ch)
            i += 1
            continue

        is_end = False
        if stack:
            top = stack[-1][0]
            if have_blockquote and ch == "\n" and at(i + 1) != ">":
                is_end = True
            elif top == "bold":
                is_end = ch == "*"
            elif top == "italic":
                is_end = ch == "_" and at(i + 1) != "_"
            elif top == "code":
                is_end = ch == "`"
            elif top in ("pre", "pre_code"):
                is_end = ch == "`" and at(i + 1) == "`" and at(i + 2) == "`"
            elif top in ("text_link", "custom_emoji"):
                is_end = ch == "]"
            elif top == "underline":
                is_end = ch == "_" and at(i + 1) == "_"
            elif top == "strikethrough":
                is_end = ch == "~"
            elif top == "spoiler":
                is_end = ch == "|" and at(i + 1) == "|"

        if not is_end:
            begin = i
            argument = ""
            kind: str | None
            if ch == "_":
                if at(i + 1) == "_":
                    kind = "underline"
                    i += 1
                else:
                    kind = "italic"
            elif ch == "*":
                kind = "bold"
            elif ch == "~":
                kind = "strikethrough"
            elif ch == "|":
                if at(i + 1) != "|":
                    raise reserved_error(i)
                kind = "spoiler"
                i += 1
            elif ch == "[":
                kind = "text_link"
            elif ch == "`":
                if at(i + 1) == "`" and at(i + 2) == "`":
                    i += 3
                    kind = "pre"
                    lang_end = i
                    while lang_end < n and text[lang_end] not in _SPACE + "`":
                        lang_end += 1
                    if i != lang_end and lang_end < n and text[lang_end] != "`":
                        kind = "pre_code"
                        argument = text[i:lang_end]
                        i = lang_end
                    if at(i) in ("\n", "\r"):
                        if at(i + 1) in ("\n", "\r") and at(i) != at(i + 1):
                            i += 2
                        else:
                            i += 1
                    i -= 1
                else:
                    kind = "code"
            elif ch == "!":
                if at(i + 1) != "[":
                    raise reserved_error(i)
                kind = "custom_emoji"
                i += 1
            elif ch == "\n":
                out.append("\n")
                u16 += 1
                kind = None
                if at(i + 1) == ">":
                    i += 1
                    if not have_blockquote:
                        kind = "blockquote"
                        have_blockquote = True
            elif ch == ">" and i == 0:
                kind = "blockquote"
                have_blockquote = True
            else:
                raise reserved_error(i)
            i += 1
            if kind is not None:
                stack.append([kind, argument, u16, begin, len(out)])
            continue

        # End of an entity.
        kind, argument, start, begin, out_index = stack[-1]
        if ch == "\n" and kind != "blockquote":
            raise EntityParseError(
                f"Can't find end of {_MD2_NAMES[kind]} entity at byte offset "
                f"{_byte_offset(text, begin)}"
            )
        skip = u16 == start
        extra: Entity = {}
        if kind in ("underline", "spoiler"):
            i += 1
        elif kind in ("pre", "pre_code"):
            i += 2
        elif kind == "text_link":
            if at(i + 1) != "(":
                url = "".join(out[out_index:])
            else:
                i += 2
                url_begin = i
                chars: list[str] = []
                while i < n and text[i] != ")":
                    if text[i] == "\\" and at(i + 1) and 0 < ord(at(i + 1)) <= 126:
                        chars.append(text[i + 1])
                        i += 2
                        continue
                    chars.append(text[i])
                    i += 1
                if i >= n:
                    raise EntityParseError(
                        f"Can't find end of a URL at byte offset {_byte_offset(text, url_begin)}"
                    )
                url = "".join(chars)
            link = _link_entity(start, u16 - start, url, lookup_user)
            if link is None:
                skip = True
            else:
                extra = link
        elif kind == "custom_emoji":
            if at(i + 1) != "(":
                raise EntityParseError("Custom emoji entity must contain a tg://emoji URL")
            i += 2
            url_begin = i
            chars = []
            while i < n and text[i] != ")":
                chars.append(text[i])
                i += 1
            if i >= n:
                raise EntityParseError(
                    "Can't find end of a custom emoji URL at byte offset "
                    f"{_byte_offset(text, url_begin)}"
                )
            match = re.fullmatch(r"tg://emoji\?id=(\d+)", "".join(chars))
            if not match:
                raise EntityParseError("Invalid custom emoji identifier specified")
            extra = {"custom_emoji_id": match.group(1)}
        elif kind == "blockquote":
            have_blockquote = False
            out.append(text[i])
            u16 += 1
        i += 1
        if not skip:
            length = u16 - start
            if extra.get("type"):
                entities.append(extra)
            elif kind == "pre_code":
                entities.append(
                    {"type": "pre", "offset": start, "length": length, "language": argument}
                )
            else:
                entity: Entity = {"type": kind, "offset": start, "length": length}
                entity.update(extra)
                entities.append(entity)
        stack.pop()

    if have_blockquote and stack and stack[-1][0] == "blockquote":
        start = stack[-1][2]
        if u16 != start:
            entities.append({"type": "blockquote", "offset": start, "length": u16 - start})
        stack.pop()
    if stack:
        kind, _arg, _start, begin, _idx = stack[-1]
        raise EntityParseError(
            f"Can't find end of {_MD2_NAMES[kind]} entity at byte offset "
            f"{_byte_offset(text, begin)}"
        )
    return "".join(out), sort_entities(entities)


# --------------------------------------------------------------------------- legacy Markdown


def parse_markdown(text: str, lookup_user: UserLookup | None = None) -> tuple[str, list[Entity]]:
    """Legacy ``Markdown``: *bold* _italic_ `code` ```pre``` [text](url); no nesting."""
    out: list[str] = []
    u16 = 0
    entities: list[Entity] = []
    n = len(text)
    i = 0
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] in "_*`[":
            out.append(text[i + 1])
            u16 += 1
            i += 2
            continue
        if ch not in "_*`[":
            out.append(ch)
            u16 += _u16(ch)
            i += 1
            continue
        begin = i
        end_char = "]" if ch == "[" else ch
        i += 1
        is_pre = False
        language = ""
        if ch == "`" and text[i : i + 2] == "``":
            i += 2
            is_pre = True
            lang_end = i
            while lang_end < n and text[lang_end] not in _SPACE + "`":
                lang_end += 1
            if i != lang_end and lang_end < n and text[lang_end] != "`":
                language = text[i:lang_end]
                i = lang_end
            # One leading newline after the opening fence is not part of the code.
            if i < n and text[i] in "\r\n":
                pair = i + 1 < n and text[i + 1] in "\r\n" and text[i] != text[i + 1]
                i += 2 if pair else 1
        start = u16
        inner_index = len(out)
        while i < n and (text[i] != end_char or (is_pre and text[i + 1 : i + 3] != "``")):
            out.append(text[i])
            u16 += _u16(text[i])
            i += 1
        if i >= n:
            raise EntityParseError(
                f"Can't find end of the entity starting at byte offset {_byte_offset(text, begin)}"
            )
        length = u16 - start
        if ch == "[":
            url = "".join(out[inner_index:])
            if text[i + 1 : i + 2] == "(":
                i += 2
                chars: list[str] = []
                while i < n and text[i] != ")":
                    chars.append(text[i])
                    i += 1
                url = "".join(chars)
            if length:
                link = _link_entity(start, length, url, lookup_user)
                if link is not None:
                    entities.append(link)
        elif length:
            if ch == "_":
                entities.append({"type": "italic", "offset": start, "length": length})
            elif ch == "*":
                entities.append({"type": "bold", "offset": start, "length": length})
            elif is_pre:
                pre: Entity = {"type": "pre", "offset": start, "length": length}
                if language:
                    pre["language"] = language
                entities.append(pre)
            else:
                entities.append({"type": "code", "offset": start, "length": length})
        i += 3 if is_pre else 1
    return "".join(out), sort_entities(entities)


# --------------------------------------------------------------------------- entities


class EntityValidationError(ValueError):
    """An explicit ``entities`` array that does not fit the text."""


def validate_entities(text: str, raw: Any, lookup_user: UserLookup | None = None) -> list[Entity]:
    """Check a bot-supplied ``entities``/``caption_entities`` array against the text."""
    if not isinstance(raw, list):
        raise EntityValidationError("can't parse entities JSON object")
    total = utf16_len(text)
    result: list[Entity] = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise EntityValidationError("can't parse MessageEntity JSON object")
        kind = item.get("type")
        offset = item.get("offset")
        length = item.get("length")
        if kind not in ENTITY_TYPES:
            raise EntityValidationError(f"unsupported entity type {kind!r}")
        if not isinstance(offset, int) or offset < 0 or offset > 1_000_000:
            raise EntityValidationError(f"Receive an entity with incorrect offset {offset}")
        if not isinstance(length, int) or length < 0 or length > 1_000_000:
            raise EntityValidationError(f"Receive an entity with incorrect length {length}")
        if length == 0:
            continue
        if offset >= total:
            raise EntityValidationError(
                f"Entity begins after the end of the text at UTF-16 offset {offset}"
            )
        if offset + length > total:
            raise EntityValidationError(
                f"Entity beginning at UTF-16 offset {offset} ends after the end of the text "
                f"at UTF-16 offset {offset + length}"
            )
        entity: Entity = {"type": kind, "offset": offset, "length": length}
        if kind == "text_link":
            url = check_link(str(item.get("url") or ""))
            if url is None:
                continue
            entity["url"] = url
        elif kind == "text_mention":
            user = item.get("user")
            if not isinstance(user, Mapping) or not isinstance(user.get("id"), int):
                raise EntityValidationError("can't parse user in text_mention entity")
            known = lookup_user(user["id"]) if lookup_user else None
            entity["user"] = known or dict(user)
        elif kind == "pre" and item.get("language"):
            entity["language"] = str(item["language"])
        elif kind == "custom_emoji":
            entity["custom_emoji_id"] = str(item.get("custom_emoji_id") or "")
        result.append(entity)
    return sort_entities(result)


def _shift_after_removal(entities: list[Entity], pos: int) -> None:
    """Adjust entities after one UTF-16 unit at ``pos`` was removed from the text."""
    for e in entities:
        if pos < e["offset"]:
            e["offset"] -= 1
        elif pos < e["offset"] + e["length"]:
            e["length"] -= 1


def _u16_index_map(text: str) -> list[int]:
    """utf16 offset of every character (plus the end), to walk text and entities together."""
    offsets = [0]
    for ch in text:
        offsets.append(offsets[-1] + _u16(ch))
    return offsets


def normalize_text(text: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    """What the server does after parsing: clean control characters, drop whitespace-only
    entities, trim leading/trailing spaces and newlines. Returns ("", []) for empty text."""
    entities = [dict(e) for e in entities if e["length"] > 0]
    # Control characters become spaces (tab included); '\r' disappears.
    chars: list[str] = []
    u16 = 0
    for ch in text:
        if ch == "\r":
            _shift_after_removal(entities, u16)
            continue
        if ord(ch) < 32 and ch != "\n":
            ch = " "
        chars.append(ch)
        u16 += _u16(ch)
    text = "".join(chars)
    offsets = _u16_index_map(text)
    by_u16 = {off: idx for idx, off in enumerate(offsets)}

    def is_ws_at(u: int) -> bool:
        idx = by_u16.get(u)
        return idx is not None and idx < len(text) and text[idx] in " \n"

    cleaned: list[Entity] = []
    for e in entities:
        if e["type"] not in HIDDEN_DATA:
            # Entities cannot start with whitespace: tdlib moves their start forward.
            while e["length"] > 0 and is_ws_at(e["offset"]):
                e["offset"] += 1
                e["length"] -= 1
            span = utf16_slice(text, e["offset"], e["length"])
            if not span.strip(" \n"):
                continue
        cleaned.append(e)
    entities = cleaned

    stripped_right = text.rstrip(" \n")
    if not stripped_right.strip(" \n"):
        return "", []
    end = utf16_len(stripped_right)
    for e in entities:
        if e["offset"] + e["length"] > end:
            e["length"] = end - e["offset"]
    entities = [e for e in entities if e["length"] > 0]
    text = stripped_right
    first_entity = min((e["offset"] for e in entities), default=utf16_len(text))
    lead = len(text) - len(text.lstrip(" \n"))
    lead = min(lead, first_entity)  # leading whitespace is all BMP, so units == chars
    if lead:
        text = text[lead:]
        for e in entities:
            e["offset"] -= lead
    return text, sort_entities(entities)


# --------------------------------------------------------------------------- auto-detection

_TLDS = (
    "com|org|net|io|ru|cn|me|dev|app|info|biz|co|uk|de|fr|jp|kr|in|us|eu|tv|ai|xyz|"
    "online|site|tech|shop|store|su|ua|by|kz|hk|tw|sg|it|es|nl|pl|br|ca|au|edu|gov|tg|link"
)
_DETECTORS: list[tuple[str, re.Pattern[str]]] = [
    (
        "email",
        re.compile(
            r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
        ),
    ),
    (
        "url",
        re.compile(
            r"(?<![\w@/.])(?:(?:https?|ftp)://[^\s<>\"]+|"
            r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?:" + _TLDS + r")\b"
            r"(?::\d{1,5})?(?:/[^\s<>\"]*)?)",
            re.IGNORECASE,
        ),
    ),
    ("mention", re.compile(r"(?<!\w)@[A-Za-z0-9_]{2,32}(?!\w)")),
    ("hashtag", re.compile(r"(?<!\w)#\w*[^\W\d_]\w*(?!#)")),
    (
        "bot_command",
        re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>])"),
    ),
]


def detect_entities(text: str, existing: Iterable[Entity] = ()) -> list[Entity]:
    """Entities the server adds by itself (URLs, e-mails, @mentions, #hashtags, /commands),
    skipping ranges already covered by continuous entities such as code or links."""
    taken: list[tuple[int, int]] = [
        (e["offset"], e["offset"] + e["length"])
        for e in existing
        if e["type"] not in SPLITTABLE and e["type"] not in BLOCKQUOTES
    ]
    offsets = _u16_index_map(text)
    found: list[Entity] = []
    for kind, pattern in _DETECTORS:
        for match in pattern.finditer(text):
            value = match.group(0)
            if kind == "url":
                value = value.rstrip(".,;:!?)'\"")
                if not value:
                    continue
            start = offsets[match.start()]
            end = offsets[match.start() + len(value)]
            if any(s < end and start < e for s, e in taken):
                continue
            taken.append((start, end))
            found.append({"type": kind, "offset": start, "length": end - start})
    return found


def _strip_unicode_ws(text: str) -> bool:
    return all(unicodedata.category(ch).startswith("Z") or ch.isspace() for ch in text)


def render(
    text: str,
    parse_mode: str | None,
    entities: Any = None,
    lookup_user: UserLookup | None = None,
) -> tuple[str, list[Entity]]:
    """Full pipeline for a text or caption: parse_mode or explicit entities, normalisation,
    auto-detected entities. Raises EntityParseError / EntityValidationError."""
    if entities is not None:
        # Explicit entities win over parse_mode, as on the real server.
        parsed_entities = validate_entities(text, entities, lookup_user)
        plain = text
    elif parse_mode:
        mode = parse_mode.lower()
        if mode == "html":
            plain, parsed_entities = parse_html(text, lookup_user)
        elif mode == "markdownv2":
            plain, parsed_entities = parse_markdown_v2(text, lookup_user)
        elif mode == "markdown":
            plain, parsed_entities = parse_markdown(text, lookup_user)
        else:
            raise UnsupportedParseMode(parse_mode)
    else:
        plain, parsed_entities = text, []
    plain, parsed_entities = normalize_text(plain, parsed_entities)
    if not plain or _strip_unicode_ws(plain):
        return "", []
    parsed_entities.extend(detect_entities(plain, parsed_entities))
    return plain, sort_entities(parsed_entities)
