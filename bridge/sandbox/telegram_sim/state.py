"""The simulator's data: users, chats, files, messages, faults, and the API error type.

Everything here is plain data with ``to_json`` helpers; behaviour lives in ``botapi`` (what
the bot can do) and ``simulator`` (what a test can do).
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

# Telegram's getFile limit for bots on the public server.
MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024


class ApiError(Exception):
    """A Bot API error answer: ``{"ok": false, "error_code", "description", "parameters"}``."""

    def __init__(self, code: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def to_json(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(reason: str) -> ApiError:
    return ApiError(400, f"Bad Request: {reason}")


class SimError(ValueError):
    """A control-API misuse (unknown message, bad argument); the HTTP control API answers 400."""


@dataclass
class SimUser:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "en"
    is_premium: bool | None = None
    blocked: bool = False  # the user blocked the bot
    deactivated: bool = False  # the account was deleted

    def to_json(self) -> JSON:
        data: JSON = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code", "is_premium"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


@dataclass
class SimChat:
    id: int
    type: str = "private"  # private | group | supergroup | channel
    title: str | None = None
    user: SimUser | None = None  # the other party of a private chat
    next_message_id: int = 1
    # The reply keyboard currently shown to the user (None when removed or never sent).
    keyboard: JSON | None = None

    def to_json(self) -> JSON:
        data: JSON = {"id": self.id, "type": self.type}
        if self.type == "private" and self.user is not None:
            for key in ("first_name", "last_name", "username"):
                value = getattr(self.user, key)
                if value is not None:
                    data[key] = value
        elif self.title is not None:
            data["title"] = self.title
        return data

    def take_message_id(self) -> int:
        # Private-chat message ids are one sequence shared by both sides, as on Telegram.
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id


_FILE_PREFIX = {
    "photo": "AgACAgIAAxkBAA",
    "document": "BQACAgIAAxkBAA",
    "audio": "CQACAgIAAxkBAA",
    "video": "BAACAgIAAxkBAA",
    "voice": "AwACAgIAAxkBAA",
    "video_note": "DQACAgIAAxkBAA",
    "sticker": "CAACAgIAAxkBAA",
    "animation": "CgACAgIAAxkBAA",
}
_PATH_DIR = {
    "photo": ("photos", ".jpg"),
    "document": ("documents", ""),
    "audio": ("music", ".mp3"),
    "video": ("videos", ".mp4"),
    "voice": ("voice", ".oga"),
    "video_note": ("video_notes", ".mp4"),
    "sticker": ("stickers", ".webp"),
    "animation": ("animations", ".mp4"),
}


@dataclass
class StoredFile:
    """One file known to the server, whoever uploaded it."""

    kind: str
    data: bytes
    number: int
    mime_type: str | None = None
    file_name: str | None = None
    width: int | None = None
    height: int | None = None
    # What getFile/messages report; tests raise it above 20 MB to provoke "file is too big".
    reported_size: int | None = None
    file_id: str = ""
    file_unique_id: str = ""
    file_path: str = ""

    def __post_init__(self) -> None:
        if not self.file_id:
            prefix = _FILE_PREFIX.get(self.kind, "BQACAgIAAxkBAA")
            self.file_id = f"{prefix}{self.number:06d}{secrets.token_urlsafe(18)}"
        if not self.file_unique_id:
            self.file_unique_id = f"AQAD{self.number:06d}{secrets.token_hex(3)}"
        if not self.file_path:
            directory, ext = _PATH_DIR.get(self.kind, ("documents", ""))
            if self.kind == "document" and self.file_name and "." in self.file_name:
                ext = "." + self.file_name.rsplit(".", 1)[1][:8]
            self.file_path = f"{directory}/file_{self.number}{ext}"

    @property
    def content_type(self) -> str:
        """mime_type without parameters (aiohttp refuses charset in content_type)."""
        return (self.mime_type or "application/octet-stream").split(";")[0].strip()

    @property
    def file_size(self) -> int:
        return self.reported_size if self.reported_size is not None else len(self.data)

    def base_json(self) -> JSON:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.file_size,
        }

    def photo_size_json(self) -> JSON:
        data = self.base_json()
        data["width"] = self.width or 0
        data["height"] = self.height or 0
        return data

    def describe(self) -> JSON:
        """Control-API view (no bytes; fetch them from /_sim/files/{file_id})."""
        data = self.base_json()
        data.update(
            {
                "kind": self.kind,
                "mime_type": self.mime_type,
                "file_name": self.file_name,
                "file_path": self.file_path,
                "width": self.width,
                "height": self.height,
                "url": f"/_sim/files/{self.file_id}",
            }
        )
        return data


@dataclass
class SimMessage:
    """A message in a chat, sent by the bot (``outgoing``) or injected as the user's.

    ``text``/``entities`` hold the rendered result (plain text + entities, exactly what a
    Telegram client would show); ``raw_text`` and ``parse_mode`` what the bot sent. For media
    messages the caption is in ``caption``/``caption_entities`` and ``files`` holds the stored
    files (for photos: every size, largest last; ``file`` is the largest).
    """

    chat_id: int
    message_id: int
    date: int
    outgoing: bool
    method: str
    payload: JSON  # the Message object as last returned to the bot / delivered in an update
    text: str | None = None
    entities: list[JSON] = field(default_factory=list)
    raw_text: str | None = None
    parse_mode: str | None = None
    caption: str | None = None
    caption_entities: list[JSON] = field(default_factory=list)
    media_kind: str | None = None
    files: list[StoredFile] = field(default_factory=list)
    media_group_id: str | None = None
    reply_markup: JSON | None = None
    reply_to_message_id: int | None = None
    link_preview_options: JSON | None = None
    edits: list[JSON] = field(default_factory=list)  # earlier versions, oldest first
    deleted: bool = False
    sent_at: float = field(default_factory=time.time)

    @property
    def file(self) -> StoredFile | None:
        return self.files[-1] if self.files else None

    @property
    def media(self) -> StoredFile | None:
        """The attached file (largest photo size); ``.kind``, ``.data``, ``.file_id``..."""
        return self.files[-1] if self.files else None

    @property
    def data(self) -> bytes | None:
        """Bytes of the (largest) attached file, if any."""
        return self.files[-1].data if self.files else None

    @property
    def content(self) -> str | None:
        """Text or caption, whichever the message has."""
        return self.text if self.text is not None else self.caption

    def snapshot(self) -> JSON:
        return {
            "text": self.text,
            "entities": [dict(e) for e in self.entities],
            "caption": self.caption,
            "caption_entities": [dict(e) for e in self.caption_entities],
            "reply_markup": self.reply_markup,
            "parse_mode": self.parse_mode,
            "date": int(time.time()),
        }

    def to_json(self) -> JSON:
        return {
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "date": self.date,
            "outgoing": self.outgoing,
            "method": self.method,
            "text": self.text,
            "entities": self.entities,
            "raw_text": self.raw_text,
            "parse_mode": self.parse_mode,
            "caption": self.caption,
            "caption_entities": self.caption_entities,
            "media_kind": self.media_kind,
            "files": [f.describe() for f in self.files],
            "media_group_id": self.media_group_id,
            "reply_markup": self.reply_markup,
            "reply_to_message_id": self.reply_to_message_id,
            "link_preview_options": self.link_preview_options,
            "edits": self.edits,
            "deleted": self.deleted,
            "message": self.payload,
        }


@dataclass
class Injected:
    """What an injection created: the update (as getUpdates/webhook will deliver it), the
    message or callback query inside it, and whether it was queued (allowed_updates)."""

    update: JSON
    queued: bool = True

    @property
    def update_id(self) -> int:
        return int(self.update["update_id"])

    @property
    def message(self) -> JSON | None:
        for key in ("message", "edited_message"):
            if key in self.update:
                return self.update[key]  # type: ignore[no-any-return]
        return None

    @property
    def message_id(self) -> int | None:
        message = self.message
        return int(message["message_id"]) if message else None

    @property
    def callback_query(self) -> JSON | None:
        return self.update.get("callback_query")

    def to_json(self) -> JSON:
        return {"update": self.update, "message": self.message, "queued": self.queued}


FAULT_KINDS = frozenset(
    {
        "http_500",
        "http_502",
        "drop_connection",
        "retry_after",
        "latency",
        "truncate_download",
        "redirect",
    }
)


@dataclass
class Fault:
    """A scheduled misbehaviour. ``method`` None matches every request; file downloads are
    matched by the pseudo-method "file". ``count`` None repeats until cleared."""

    kind: str
    method: str | None = None
    count: int | None = 1
    delay: float = 0.0
    retry_after: int = 1
    location: str | None = None  # redirect: where to
    fired: int = 0

    def matches(self, method: str) -> bool:
        if self.count is not None and self.count <= 0:
            return False
        if self.kind == "truncate_download" and method != "file":
            return False
        return self.method is None or self.method.lower() == method.lower()

    def to_json(self) -> JSON:
        return {
            "kind": self.kind,
            "method": self.method,
            "count": self.count,
            "delay": self.delay,
            "retry_after": self.retry_after,
            "location": self.location,
            "fired": self.fired,
        }


@dataclass
class UploadedFile:
    """A multipart file part."""

    filename: str | None
    content_type: str | None
    data: bytes


def b64decode(value: str | None) -> bytes | None:
    return base64.b64decode(value) if value else None
