"""Telegram updates → the core's ``Incoming`` events: ``translate``, a pure function.

It reads a PTB ``Update`` (parsed by PTB from the stored JSON) and says what it means to the
conversation, or None for what the bridge does not handle; it writes nothing.  Storing the
result happens afterwards, in the transaction that marks the update done, so nothing is
written twice on a replay.  The dispatch follows PTB's handlers as the bridge used them:
commands first (private chats; a leading bot command for this bot), then buttons, the
bot's own membership, edited and new messages in private chats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from telegram import Message, MessageEntity, Update
from telegram.constants import ChatMemberStatus

from bridge.core.model import (
    ButtonTap,
    ChatMembership,
    Command,
    CustomerMessage,
    Incoming,
    MediaRef,
    UserInfo,
)
from bridge.telegram.formatting import telegram_to_udesk_html

COMMANDS = ("start", "agent", "end", "cancel", "help")


def _user(update: Update) -> UserInfo | None:
    user = update.effective_user
    chat = update.effective_chat
    if user is None or chat is None:
        return None
    return UserInfo(
        user_id=user.id,
        chat_id=chat.id,
        first_name=user.first_name,
        last_name=user.last_name,
        username=user.username,
        language_code=user.language_code,
        chat_type=chat.type,
    )


def _seconds(value: Any) -> int | None:
    """PTB gives durations as timedelta (PTB_TIMEDELTA) or int; we store whole seconds."""
    if value is None:
        return None
    return int(value.total_seconds()) if hasattr(value, "total_seconds") else int(value)


def _media(message: Message) -> MediaRef | None:
    if message.photo:
        largest = message.photo[-1]
        return MediaRef(
            "photo",
            largest.file_id,
            largest.file_unique_id,
            file_name=f"photo_{message.message_id}.jpg",
            mime_type="image/jpeg",
            file_size=largest.file_size,
        )
    for kind in ("document", "video", "audio", "voice", "video_note", "animation", "sticker"):
        item: Any = getattr(message, kind, None)
        if item is None:
            continue
        if kind == "animation" and message.document is not None:
            continue  # an animation also fills `document`; keep the document
        return MediaRef(
            kind,  # type: ignore[arg-type]
            item.file_id,
            item.file_unique_id,
            file_name=getattr(item, "file_name", None),
            mime_type=getattr(item, "mime_type", None)
            or ("image/webp" if kind == "sticker" else None),
            file_size=item.file_size,
            duration=_seconds(getattr(item, "duration", None)),
        )
    return None


def _html(message: Message) -> str:
    raw = message.text_html if message.text is not None else message.caption_html
    return telegram_to_udesk_html(raw) if raw else ""


def message_event(message: Message, *, edited: bool) -> CustomerMessage | None:
    """A Telegram message as the core sees it; None for what we do not forward."""
    media = _media(message)
    html = _html(message)
    if message.sticker is not None and not html:
        html = ""
    edit_date = int(message.edit_date.timestamp()) if message.edit_date else None
    base: dict[str, Any] = {
        "message_id": message.message_id,
        "html": html,
        "media": media,
        "media_group_id": message.media_group_id,
        "edited": edited,
        "edit_date": edit_date,
    }
    if message.location is not None:
        base["location"] = (message.location.latitude, message.location.longitude)
        if message.venue is not None:
            base["venue_title"] = message.venue.title
    elif message.contact is not None:
        contact = message.contact
        base["contact_phone"] = contact.phone_number
        base["contact_name"] = " ".join(p for p in (contact.first_name, contact.last_name) if p)
        sender = message.from_user.id if message.from_user else None
        base["contact_is_self"] = contact.user_id is not None and contact.user_id == sender
    elif media is None and not html:
        return None
    return CustomerMessage(**base)


@dataclass(frozen=True)
class Translation:
    """What ``translate`` needs beyond the update: the bot's username (a command addressed
    to another bot, ``/start@other_bot``, is not ours) and whether /forget is on."""

    bot_username: str | None = None
    forget_command: bool = False  # privacy: /forget only with FORGET_COMMAND

    @property
    def commands(self) -> tuple[str, ...]:
        return (*COMMANDS, "forget") if self.forget_command else COMMANDS


def translate(update: Update, how: Translation) -> Incoming | None:
    """The event ``update`` means to the conversation, or None."""
    user = _user(update)
    if user is None:
        return None
    event = _event(update, how)
    return Incoming(update.update_id, user, event) if event is not None else None


def _event(update: Update, how: Translation) -> Any:
    message = update.message or update.edited_message
    private = update.effective_chat is not None and update.effective_chat.type == "private"
    if message is not None and private:
        command = _command(message, how)
        if command is not None:
            return command
    if update.callback_query is not None:
        query = update.callback_query
        data = query.data or ""
        action_id = int(data[2:]) if data.startswith("b:") and data[2:].isdigit() else None
        message_id = query.message.message_id if query.message else None
        return ButtonTap(query.id, action_id, message_id)
    if update.my_chat_member is not None:
        status = update.my_chat_member.new_chat_member.status
        return ChatMembership(blocked=status in (ChatMemberStatus.BANNED, ChatMemberStatus.LEFT))
    if update.edited_message is not None and private:
        return message_event(update.edited_message, edited=True)
    if update.message is not None and private:
        return message_event(update.message, edited=False)
    return None


def _command(message: Message, how: Translation) -> Command | None:
    """A bot command the bridge knows at the start of the text, as PTB's CommandHandler
    reads it; None otherwise (an unknown command is an ordinary message)."""
    text = message.text
    entities = message.entities
    if not text or not entities:
        return None
    first = entities[0]
    if first.type != MessageEntity.BOT_COMMAND or first.offset != 0:
        return None
    name, _, addressed = text[1 : first.length].partition("@")
    if addressed and (how.bot_username or "").lower() != addressed.lower():
        return None
    name = name.lower()
    if name not in how.commands:
        return None
    args = " ".join(text.split()[1:])
    return Command(message.message_id, name, args)
