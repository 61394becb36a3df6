"""Telegram updates → the core's ``Incoming`` events, with PTB's own handler machinery.

The Application runs our handlers for a stored update (``process_update``); each handler
only translates and leaves its result here.  Storing the result happens afterwards, in the
transaction that marks the update done, so nothing is written twice on a replay.
"""

from __future__ import annotations

from typing import Any

from telegram import Message, Update
from telegram.constants import ChatMemberStatus
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

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


class Translator:
    """Registers handlers on an Application and collects what they translate."""

    def __init__(self, *, forget_command: bool = False) -> None:
        self._results: dict[int, Incoming] = {}
        self.forget_command = forget_command  # privacy: /forget only with FORGET_COMMAND

    def install(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        private = filters.ChatType.PRIVATE
        names = (*COMMANDS, "forget") if self.forget_command else COMMANDS
        for name in names:
            app.add_handler(CommandHandler(name, self._command, filters=private))
        app.add_handler(CallbackQueryHandler(self._button))
        app.add_handler(ChatMemberHandler(self._membership, ChatMemberHandler.MY_CHAT_MEMBER))
        app.add_handler(MessageHandler(private & filters.UpdateType.EDITED_MESSAGE, self._edited))
        app.add_handler(MessageHandler(private & filters.UpdateType.MESSAGE, self._message))

    def take(self, update_id: int) -> Incoming | None:
        return self._results.pop(update_id, None)

    def _put(self, update: Update, event: Any) -> None:
        user = _user(update)
        if user is not None and event is not None:
            self._results[update.update_id] = Incoming(update.update_id, user, event)

    async def _command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or message.text is None:
            return
        name = message.text.split()[0].lstrip("/").split("@")[0].lower()
        args = " ".join(context.args or [])
        self._put(update, Command(message.message_id, name, args))

    async def _button(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        data = query.data or ""
        action_id = int(data[2:]) if data.startswith("b:") and data[2:].isdigit() else None
        message_id = query.message.message_id if query.message else None
        self._put(update, ButtonTap(query.id, action_id, message_id))

    async def _membership(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        change = update.my_chat_member
        if change is None:
            return
        blocked = change.new_chat_member.status in (
            ChatMemberStatus.BANNED,
            ChatMemberStatus.LEFT,
        )
        self._put(update, ChatMembership(blocked=blocked))

    async def _message(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.message is not None:
            self._put(update, message_event(update.message, edited=False))

    async def _edited(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.edited_message is not None:
            self._put(update, message_event(update.edited_message, edited=True))
