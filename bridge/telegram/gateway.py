"""The core's ``TelegramGateway`` on python-telegram-bot: render, split, send, fall back.

PTB's errors become the core's: Forbidden → ChatUnreachable, RetryAfter / network →
TransientError (with ``retry_after``), a BadRequest that survives the plain-text fallback →
ContentRejected.  Progress through a multi-part item is reported on TransientError as
``sent`` so a retry does not show the first parts twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any

import aiohttp
from telegram import (
    Bot,
    ForceReply,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    InputMediaVideo,
    KeyboardButton,
    MessageEntity,
    ReplyKeyboardMarkup,
)
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bridge import metrics
from bridge.core.errors import ChatUnreachable, ContentRejected, FileTooBig, TransientError
from bridge.core.model import OutgoingItem
from bridge.core.ports import DownloadedFile
from bridge.telegram.attachments import AttachmentError, fetch
from bridge.telegram.formatting import (
    TEXT_LIMIT,
    plain_fallback,
    render_udesk_html,
    split_for_telegram,
)
from bridge.telegram.keyboard import inline_keyboard

log = logging.getLogger("bridge.telegram.gateway")

BOT_API_FILE_LIMIT = 20 * 1024 * 1024
EMPTY_TEXT = "…"


class PartialDelivery(TransientError):
    """Some parts of an item went out before a transient failure."""

    def __init__(self, cause: TransientError, sent: int) -> None:
        super().__init__(str(cause), retry_after=cause.retry_after)
        self.sent = sent


class ChatLimiter:
    """At most one message per ``period`` seconds per chat (Telegram's guidance).

    PTB's AIORateLimiter limits the bot as a whole and groups, not private chats.  We tried
    aiolimiter's AsyncLimiter per chat and saw waiters never woken under load (a leaky
    bucket of capacity 1 with a non-integer period); spacing sends by a per-chat "next
    allowed" time is all that is needed here, and cannot stall.
    """

    def __init__(self, period: float = 1.05, size: int = 10000) -> None:
        self.period = period
        self.size = size
        self._next: OrderedDict[int, float] = OrderedDict()

    async def wait(self, chat_id: int) -> None:
        """Until this chat's turn: ``period`` after its previous message went out."""
        if self.period <= 0:
            return
        loop = asyncio.get_running_loop()
        delay = self._next.get(chat_id, 0.0) - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)

    def sent(self, chat_id: int) -> None:
        """Called when a send finished: the next one waits ``period`` from now, so time spent
        queueing behind the bot-wide limiter never squeezes two messages together."""
        if self.period <= 0:
            return
        self._next.pop(chat_id, None)
        self._next[chat_id] = asyncio.get_running_loop().time() + self.period
        while len(self._next) > self.size:
            self._next.popitem(last=False)


def _translate(exc: TelegramError) -> Exception:
    if isinstance(exc, Forbidden):
        return ChatUnreachable(exc.message)
    if isinstance(exc, RetryAfter):
        delay = exc.retry_after
        seconds = delay.total_seconds() if hasattr(delay, "total_seconds") else float(delay)
        metrics.telegram_rate_limited(seconds)
        return TransientError("Telegram flood control", retry_after=seconds + 0.1)
    if isinstance(exc, BadRequest):
        return ContentRejected(exc.message)
    if isinstance(exc, NetworkError):  # includes TimedOut
        return TransientError(f"Telegram network error: {exc.message}")
    return TransientError(f"Telegram error: {exc}")


class TelegramSender:
    def __init__(
        self,
        bot: Bot,
        http: aiohttp.ClientSession,
        *,
        max_media_bytes: int,
        allow_private_urls: bool = False,
        chat_period: float = 1.05,
    ) -> None:
        self.bot = bot
        self.http = http
        self.max_media_bytes = max_media_bytes
        self.allow_private_urls = allow_private_urls
        self.limit = ChatLimiter(chat_period)

    # --- TelegramGateway ---------------------------------------------------------------

    async def show(
        self,
        chat_id: int,
        item: OutgoingItem,
        *,
        language: str | None,
        edit_message_id: int | None,
        skip: int = 0,
    ) -> list[int]:
        if item.kind == "media":
            return [
                await self._media(chat_id, item.media_type or "file", item.url or "", item.filename)
            ]
        if item.kind == "album":
            return await self._album(chat_id, item.items)
        if item.kind == "request_contact":
            return [await self._request_contact(chat_id, item)]
        if item.kind == "force_reply":
            return [await self._force_reply(chat_id, item)]
        return await self._text(chat_id, item, edit_message_id, skip)

    async def download(self, file_id: str, *, max_bytes: int) -> DownloadedFile:
        try:
            file = await self.bot.get_file(file_id)
            if (file.file_size or 0) > min(max_bytes, BOT_API_FILE_LIMIT):
                raise FileTooBig(f"{file.file_size} bytes")
            data = bytes(await file.download_as_bytearray())
        except BadRequest as exc:
            if "too big" in exc.message.lower():
                raise FileTooBig(exc.message) from None
            raise ContentRejected(exc.message) from None
        except TelegramError as exc:
            raise _translate(exc) from None
        name = (file.file_path or file_id).rsplit("/", 1)[-1]
        return DownloadedFile(data=data, file_name=name, mime_type="application/octet-stream")

    async def answer_button(self, callback_query_id: str, text: str | None) -> None:
        try:
            await self.bot.answer_callback_query(callback_query_id, text=text)
        except TelegramError as exc:
            raise _translate(exc) from None

    # --- text ----------------------------------------------------------------------------

    async def _call(self, chat_id: int, method: Any, /, **kwargs: Any) -> Any:
        await self.limit.wait(chat_id)
        try:
            return await method(chat_id=chat_id, **kwargs)
        finally:
            self.limit.sent(chat_id)

    async def _text(
        self, chat_id: int, item: OutgoingItem, edit_message_id: int | None, skip: int
    ) -> list[int]:
        if item.plain:
            text, entities, images = item.html, [], []
        else:
            rendered = render_udesk_html(item.html)
            text, entities, images = rendered.text, rendered.entities, rendered.images
        chunks: list[tuple[str, list[MessageEntity]]] = split_for_telegram(
            text, entities, TEXT_LIMIT
        )
        markup = inline_keyboard(item.buttons)
        if not chunks and (markup is not None or not images):
            chunks = [(EMPTY_TEXT, [])]
        ids: list[int] = []
        step = 0
        try:
            for index, (chunk, chunk_entities) in enumerate(chunks):
                step += 1
                if step <= skip:
                    continue
                last = index == len(chunks) - 1
                ids.append(
                    await self._send_text(
                        chat_id,
                        chunk,
                        chunk_entities,
                        markup if last else None,
                        edit_message_id if len(chunks) == 1 else None,
                        fallback=item.html if not item.plain else None,
                    )
                )
            for url in images:
                step += 1
                if step <= skip:
                    continue
                ids.append(await self._media(chat_id, "image", url, None))
        except TransientError as exc:
            raise PartialDelivery(exc, step - 1) from None
        return ids

    async def _send_text(
        self,
        chat_id: int,
        text: str,
        entities: list[MessageEntity],
        markup: InlineKeyboardMarkup | None,
        edit_message_id: int | None,
        *,
        fallback: str | None,
    ) -> int:
        try:
            return await self._send_or_edit(chat_id, text, entities, markup, edit_message_id)
        except BadRequest as exc:
            if not entities and fallback is None:
                raise ContentRejected(exc.message) from None
            # Telegram refused the formatting: send the words without it, never lose them.
            log.warning("formatted text rejected (%s); sending plain text", exc.message)
            plain = text if entities else plain_fallback(fallback or text)
            try:
                return await self._send_or_edit(
                    chat_id, plain[:TEXT_LIMIT] or EMPTY_TEXT, [], markup, edit_message_id
                )
            except TelegramError as again:
                raise _translate(again) from None
        except TelegramError as exc:
            raise _translate(exc) from None

    async def _send_or_edit(
        self,
        chat_id: int,
        text: str,
        entities: list[MessageEntity],
        markup: InlineKeyboardMarkup | None,
        edit_message_id: int | None,
    ) -> int:
        if edit_message_id is not None:
            try:
                await self._call(
                    chat_id,
                    self.bot.edit_message_text,
                    message_id=edit_message_id,
                    text=text,
                    entities=entities or None,
                    reply_markup=markup,
                )
                return edit_message_id
            except BadRequest as exc:
                if "not modified" in exc.message.lower():
                    return edit_message_id
                # The message to edit is gone (deleted, too old): send a new one.
        message = await self._call(
            chat_id,
            self.bot.send_message,
            text=text,
            entities=entities or None,
            reply_markup=markup,
            link_preview_options=None,
        )
        return int(message.message_id)

    async def _request_contact(self, chat_id: int, item: OutgoingItem) -> int:
        """A reply keyboard with Telegram's "share my phone number" button."""
        label = item.buttons[0][0].text if item.buttons and item.buttons[0] else "📞"
        markup = ReplyKeyboardMarkup(
            [[KeyboardButton(label, request_contact=True)]],
            one_time_keyboard=True,
            resize_keyboard=True,
        )
        try:
            message = await self._call(
                chat_id, self.bot.send_message, text=item.html or EMPTY_TEXT, reply_markup=markup
            )
        except TelegramError as exc:
            raise _translate(exc) from None
        return int(message.message_id)

    async def _force_reply(self, chat_id: int, item: OutgoingItem) -> int:
        """A question whose answer the user types as a reply (the survey remark)."""
        try:
            message = await self._call(
                chat_id,
                self.bot.send_message,
                text=item.html or EMPTY_TEXT,
                reply_markup=ForceReply(selective=False),
            )
        except TelegramError as exc:
            raise _translate(exc) from None
        return int(message.message_id)

    # --- media ---------------------------------------------------------------------------

    async def _media(self, chat_id: int, media_type: str, url: str, filename: str | None) -> int:
        if not url.lower().startswith(("http://", "https://")):
            # Never handed to PTB: a file:// or attach:// "URL" would make it read or upload
            # something of ours.  Such an attachment cannot be delivered.
            raise ContentRejected("attachment URL is not http(s)")
        method, field = {
            "image": (self.bot.send_photo, "photo"),
            "audio": (self.bot.send_audio, "audio"),
            "video": (self.bot.send_video, "video"),
        }.get(media_type, (self.bot.send_document, "document"))
        try:
            message = await self._call(chat_id, method, **{field: url})
            return int(message.message_id)
        except BadRequest as exc:
            # Telegram could not fetch the URL itself: fetch it here and upload it.
            log.info("Telegram could not fetch an attachment (%s); uploading it", exc.message)
        except TelegramError as exc:
            raise _translate(exc) from None
        attachment = await self._fetch(url)
        name = filename or attachment.filename
        try:
            message = await self._call(chat_id, method, **{field: attachment.data}, filename=name)
            return int(message.message_id)
        except BadRequest:
            if method is self.bot.send_document:
                raise
        except TelegramError as exc:
            raise _translate(exc) from None
        # A photo or video Telegram will not take as such still reaches the user as a file.
        try:
            message = await self._call(
                chat_id, self.bot.send_document, document=attachment.data, filename=name
            )
            return int(message.message_id)
        except TelegramError as exc:
            raise _translate(exc) from None

    async def _fetch(self, url: str) -> Any:
        try:
            return await fetch(
                self.http,
                url,
                max_bytes=min(self.max_media_bytes, 50 * 1024 * 1024),
                allow_private=self.allow_private_urls,
            )
        except AttachmentError as exc:
            if exc.transient:
                raise TransientError(str(exc)) from None
            raise ContentRejected(f"attachment not deliverable: {exc}") from None

    async def _album(self, chat_id: int, items: list[dict[str, Any]]) -> list[int]:
        def build(source: dict[str, Any], media: Any) -> Any:
            kind = source.get("media_type")
            if kind == "image":
                return InputMediaPhoto(media)
            if kind == "video":
                return InputMediaVideo(media)
            return InputMediaDocument(media, filename=source.get("filename"))

        ids: list[int] = []
        for start in range(0, len(items), 10):  # Telegram takes 2-10 items per album
            batch = items[start : start + 10]
            if len(batch) == 1:
                one = batch[0]
                ids.append(
                    await self._media(chat_id, one["media_type"], one["url"], one.get("filename"))
                )
                continue
            try:
                messages = await self._call(
                    chat_id, self.bot.send_media_group, media=[build(i, i["url"]) for i in batch]
                )
            except BadRequest:
                files = await asyncio.gather(*(self._fetch(i["url"]) for i in batch))
                try:
                    messages = await self._call(
                        chat_id,
                        self.bot.send_media_group,
                        media=[build(i, f.data) for i, f in zip(batch, files, strict=True)],
                    )
                except TelegramError as exc:
                    raise _translate(exc) from None
            except TelegramError as exc:
                raise _translate(exc) from None
            ids.extend(int(m.message_id) for m in messages)
        return ids
