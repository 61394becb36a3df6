"""What crosses the bridge, in our own terms (no PTB, no Udesk wire shapes).

Events from customers are stored as JSON in queue records, so every type here converts to and
from a plain dict (``to_dict`` / ``from_dict``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

MediaKind = Literal[
    "photo", "document", "voice", "audio", "video", "video_note", "sticker", "animation"
]


@dataclass(frozen=True)
class UserInfo:
    """Who wrote: a Telegram user in a chat."""

    user_id: int
    chat_id: int
    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    chat_type: str = "private"

    @property
    def display_name(self) -> str:
        name = " ".join(p for p in (self.first_name, self.last_name) if p) or "Telegram user"
        return f"{name} (@{self.username})" if self.username else name


@dataclass(frozen=True)
class MediaRef:
    """A customer's file, still on Telegram's side (``file_id``)."""

    kind: MediaKind
    file_id: str
    file_unique_id: str
    file_name: str | None = None
    mime_type: str | None = None
    file_size: int | None = None
    duration: int | None = None


@dataclass(frozen=True)
class CustomerMessage:
    """A message the customer sent (or edited): text, media, location or contact."""

    message_id: int
    html: str = ""  # text or caption, formatting as HTML Udesk accepts
    media: MediaRef | None = None
    media_group_id: str | None = None
    edited: bool = False
    edit_date: int | None = None
    location: tuple[float, float] | None = None
    venue_title: str | None = None
    contact_phone: str | None = None
    contact_name: str | None = None
    contact_is_self: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomerMessage:
        data = dict(data)
        media = data.pop("media", None)
        location = data.pop("location", None)
        return cls(
            **data,
            media=MediaRef(**media) if media else None,
            location=tuple(location) if location else None,  # type: ignore[arg-type]
        )


# --- What the bridge shows a customer (stored in inbound records, rendered by the edge) ---


@dataclass(frozen=True)
class Button:
    """An inline button: ``action`` goes back to the core when tapped; ``url`` opens a link."""

    text: str
    action: dict[str, Any] | None = None
    url: str | None = None


@dataclass(frozen=True)
class OutgoingItem:
    """One thing to show in the chat.

    ``kind``: ``text`` (``html`` from Udesk or a bot text), ``media`` (``media_type`` image,
    audio, video, file with ``url``), ``album`` (``items``), ``queue_position`` (edited in
    place), ``request_contact`` (a reply keyboard asking for the phone number).
    """

    kind: str
    html: str = ""
    plain: bool = False  # bot texts are plain; Udesk content is HTML
    media_type: str | None = None
    url: str | None = None
    filename: str | None = None
    buttons: list[list[Button]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutgoingItem:
        data = dict(data)
        rows = data.pop("buttons", []) or []
        buttons = [[Button(**b) for b in row] for row in rows]
        return cls(**data, buttons=buttons)


# --- What a customer did, as the Telegram edge reports it to the core ---


@dataclass(frozen=True)
class Command:
    """``/start payload``, ``/agent``, ``/end``, ``/cancel``, ``/help``."""

    message_id: int
    name: str
    args: str = ""


@dataclass(frozen=True)
class ButtonTap:
    """An inline button was tapped; ``action_id`` is our ``button_actions`` row."""

    callback_query_id: str
    action_id: int | None
    message_id: int | None = None


@dataclass(frozen=True)
class ChatMembership:
    """The user blocked (``blocked=True``) or unblocked the bot."""

    blocked: bool


@dataclass(frozen=True)
class Incoming:
    """One Telegram update, translated."""

    update_id: int
    user: UserInfo
    event: CustomerMessage | Command | ButtonTap | ChatMembership


# --- What Udesk pushed, as the Udesk edge reports it to the core ---


@dataclass(frozen=True)
class AgentMessage:
    """One item of a Udesk push (agent, robot or urobot), in our terms.

    ``kind``: ``text`` (HTML), ``image``/``audio``/``video``/``file`` (``content`` is the URL),
    ``start_session``, ``transfer``, ``close``, ``robot`` (answer with question buttons),
    ``urobot`` (answer with suggestions and flow items), or ``hidden`` (recorded, not shown).
    """

    message_id: str
    kind: str
    content: str = ""
    filename: str | None = None
    agent_name: str | None = None
    agent_id: int | None = None
    im_sub_session_id: int | None = None
    survey_options: dict[str, Any] | None = None
    questions: list[str] = field(default_factory=list)
    link: str | None = None
    question_id: int | None = None
    flow_items: list[tuple[int, str]] = field(default_factory=list)
    log_id: int | None = None
    urobot_session_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Part:
    """One piece of a customer message as Udesk takes it: text, or a media link."""

    udesk_type: str  # message | image | audio | video | file
    content: str  # the text, or the media link under PUBLIC_URL/media/
    filename: str | None = None
    data: bytes | None = None  # the media itself, for a ticket attachment
    mime_type: str | None = None
