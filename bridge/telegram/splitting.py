"""Split formatted Telegram text into messages that fit Telegram's length limits.

Telegram counts text length and entity offsets in UTF-16 code units, while Python strings are
indexed by code point.  Everything here works on code-point indices internally and converts
through a prefix table, so a character outside the BMP (most emoji) is never cut in half.

Whitespace contract of :func:`split_for_telegram` (Telegram strips it anyway): every chunk is
non-empty and has no leading or trailing whitespace (``str.isspace``), and the original text is
exactly ``w0 + c1 + w1 + c2 + ... + cn + wn`` where ``c1..cn`` are the chunks and every ``wi``
is a whitespace-only (possibly empty) string.  Nothing but whitespace is ever dropped.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

from telegram import MessageEntity
from telegram.constants import MessageLimit

__all__ = [
    "CAPTION_LIMIT",
    "TEXT_LIMIT",
    "clip_entities",
    "split_for_telegram",
    "utf16_len",
]

TEXT_LIMIT: int = MessageLimit.MAX_TEXT_LENGTH  # 4096 UTF-16 code units
CAPTION_LIMIT: int = MessageLimit.CAPTION_LENGTH  # 1024 UTF-16 code units

# A sentence ends at . ! ? … followed by whitespace, or right after CJK full-width punctuation.
_SENTENCE_END = re.compile(r"[.!?…]+(?=\s)|[。！？；]+")
_ZWJ = "\u200d"
# How far a hard cut may move back to keep a grapheme (combining marks, ZWJ emoji) intact.
_GRAPHEME_BACKOFF = 32


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the unit Telegram uses for limits and offsets."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _utf16_prefix(text: str) -> list[int]:
    """``prefix[i]`` is the UTF-16 offset of code point ``i``; ``prefix[len(text)]`` the total."""
    return [0, *accumulate(2 if ord(ch) > 0xFFFF else 1 for ch in text)]


def _copy_entity(entity: MessageEntity, offset: int, length: int) -> MessageEntity:
    """A copy of ``entity`` (url, language, user, ... kept) with a new range."""
    data = entity.to_dict()
    data["offset"] = offset
    data["length"] = length
    return MessageEntity.de_json(data, None)


def clip_entities(entities: Sequence[MessageEntity], start: int, end: int) -> list[MessageEntity]:
    """Entities restricted to the UTF-16 range ``[start, end)`` and rebased to ``start``.

    An entity partly inside the range is cut to the part inside it; entities outside it are
    dropped.  The input entities are not modified.
    """
    clipped: list[MessageEntity] = []
    for entity in entities:
        lo = max(entity.offset, start)
        hi = min(entity.offset + entity.length, end)
        if hi > lo:
            if lo == entity.offset and hi - lo == entity.length and start == 0:
                clipped.append(entity)
            else:
                clipped.append(_copy_entity(entity, lo - start, hi - lo))
    return clipped


def _is_grapheme_extender(ch: str) -> bool:
    """Characters that belong to the preceding character (must not start a chunk)."""
    cp = ord(ch)
    return (
        ch == _ZWJ
        or unicodedata.category(ch) in ("Mn", "Me", "Mc")
        or 0xFE00 <= cp <= 0xFE0F  # variation selectors
        or 0x1F3FB <= cp <= 0x1F3FF  # emoji skin tone modifiers
        or 0xE0020 <= cp <= 0xE007F  # emoji tag sequences
        or 0xE0100 <= cp <= 0xE01EF  # variation selectors supplement
    )


def _hard_cut(text: str, start: int, stop: int) -> int:
    """Cut at ``stop``, moved back a little so a grapheme cluster is not torn apart."""
    cut = stop
    for _ in range(_GRAPHEME_BACKOFF):
        if cut - 1 <= start:
            break
        if not (_is_grapheme_extender(text[cut]) or text[cut - 1] == _ZWJ):
            return cut
        cut -= 1
    if cut > start and not (_is_grapheme_extender(text[cut]) or text[cut - 1] == _ZWJ):
        return cut
    return stop  # pathological run of combining marks: a plain code-point cut


def _last_space(text: str, lo: int, stop: int) -> int:
    for pos in range(stop, lo - 1, -1):
        if text[pos].isspace():
            return pos
    return -1


def _last_sentence_end(text: str, start: int, lo: int, stop: int) -> int:
    best = -1
    for match in _SENTENCE_END.finditer(text, start, stop + 1):
        if lo <= match.end() <= stop:
            best = match.end()
    return best


def _find_cut(text: str, start: int, stop: int) -> int:
    """Best cut position ``p`` in ``(start, stop]``; the chunk is ``text[start:p]``.

    ``stop`` is the furthest cut that still fits and ``text[stop]`` exists.  Preference:
    paragraph break > line break > sentence end > whitespace > hard cut.  Boundaries in the
    second half of the window are tried first so chunks do not come out tiny.
    """
    for lo in (start + max(1, (stop - start) // 2), start + 1):
        for pos in (
            text.rfind("\n\n", lo, stop + 2),
            text.rfind("\n", lo, stop + 1),
            _last_sentence_end(text, start, lo, stop),
            _last_space(text, lo, stop),
        ):
            if lo <= pos <= stop:
                return pos
    return _hard_cut(text, start, stop)


def split_for_telegram(
    text: str,
    entities: Sequence[MessageEntity] = (),
    limit: int = TEXT_LIMIT,
) -> list[tuple[str, list[MessageEntity]]]:
    """Split ``text`` + ``entities`` into chunks of at most ``limit`` UTF-16 code units.

    Cuts prefer a paragraph break, then a line break, a sentence end, any whitespace, and only
    then a hard cut (never inside a surrogate pair, and not inside a combining/ZWJ sequence when
    avoidable).  Entities are carried into every chunk they touch: one crossing a cut is split
    in two, and offsets are rebased to each chunk.  Whitespace at the text's ends and at cut
    points is dropped (see the module docstring for the exact contract), so no chunk is ever
    empty; whitespace-only text gives ``[]``.

    Use ``limit=CAPTION_LIMIT`` (1024) for media captions.
    """
    if limit < 2:
        raise ValueError("limit must be at least 2 UTF-16 code units (one astral character)")
    prefix = _utf16_prefix(text)
    end = len(text.rstrip())
    start = len(text) - len(text.lstrip()) if end else end
    chunks: list[tuple[str, list[MessageEntity]]] = []
    while start < end:
        # Largest index whose prefix fits: text[start:stop] is within the limit.
        stop = bisect_right(prefix, prefix[start] + limit, start, end + 1) - 1
        cut = end if stop >= end else _find_cut(text, start, stop)
        piece = text[start:cut].rstrip()
        piece_end = start + len(piece)
        chunks.append((piece, clip_entities(entities, prefix[start], prefix[piece_end])))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    return chunks
