"""TelegramSimulator: the state, the aiohttp app, and the Python control API.

See the package docstring for the full API. The simulator is single-threaded and lives on
the event loop that serves its app; control methods are synchronous (they only mutate state
and wake waiters) except the ``wait_*`` helpers and ``start``/``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import secrets
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from . import formatting, media
from .botapi import BotApi
from .control import add_control_routes
from .limits import RateLimiter
from .state import (
    FAULT_KINDS,
    JSON,
    ApiError,
    Fault,
    Injected,
    SimChat,
    SimError,
    SimMessage,
    SimUser,
    StoredFile,
)
from .webhook import WebhookConfig, deliver_forever

UserRef = int | Mapping[str, Any] | SimUser
# Updates Telegram sends when allowed_updates is empty or not given.
DEFAULT_UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "callback_query",
        "inline_query",
        "chosen_inline_result",
        "shipping_query",
        "pre_checkout_query",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
    }
)


@dataclass
class RequestRecord:
    time: float
    method: str
    params: dict[str, Any] | None
    status: int
    error: str | None

    def to_json(self) -> JSON:
        return {
            "time": self.time,
            "method": self.method,
            "params": self.params,
            "status": self.status,
            "error": self.error,
        }


class TelegramSimulator:
    """An in-process Telegram Bot API server for one bot."""

    def __init__(
        self,
        bot_token: str = "123456:TEST-token",
        bot_username: str = "udesk_test_bot",
        *,
        bot_first_name: str = "Udesk Test Bot",
        webhook_retry_delay: float = 0.05,
        webhook_max_retry_delay: float = 1.0,
        webhook_timeout: float = 10.0,
        url_fetch_timeout: float = 10.0,
    ) -> None:
        self.bot_token = bot_token
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        prefix = bot_token.split(":", 1)[0]
        self.bot_id = int(prefix) if prefix.isdigit() else 123456
        self.webhook_retry_delay = webhook_retry_delay
        self.webhook_max_retry_delay = webhook_max_retry_delay
        self.webhook_timeout = webhook_timeout
        self.url_fetch_timeout = url_fetch_timeout

        self.limiter = RateLimiter()
        self.stats: Counter[str] = Counter()
        self.requests: list[RequestRecord] = []
        self.closing = False
        self.poll_generation = 0
        self.version = 0  # bumped on every change; lets HTTP clients long-poll for changes
        self._changed = asyncio.Event()
        self._changed_loop: asyncio.AbstractEventLoop | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._app_used = False
        self.base_url: str | None = None
        self._init_state()
        self.api = BotApi(self)
        self.app = self._build_app()

    def _init_state(self) -> None:
        self.users: dict[int, SimUser] = {}
        self.chats: dict[int, SimChat] = {}
        self.messages: dict[int, dict[int, SimMessage]] = {}
        self.files: dict[str, StoredFile] = {}
        self.files_by_path: dict[str, StoredFile] = {}
        self.photo_sizes: dict[str, list[StoredFile]] = {}
        self.chat_action_log: list[JSON] = []
        self.callback_queries: dict[str, JSON] = {}
        self.callback_answers: list[JSON] = []
        self.commands: dict[tuple[str, str], list[JSON]] = {}
        self.updates: list[JSON] = []
        self.next_update_id = 100_000_001
        self.allowed_updates: list[str] | None = None
        self.webhook: WebhookConfig | None = None
        self.faults: list[Fault] = []
        self._file_counter = 0

    # ------------------------------------------------------------------ app & server

    def _build_app(self) -> web.Application:
        # Uploads up to Telegram's 50 MB bot limit must fit in one request body.
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self.api.handle)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self.api.handle_file)
        add_control_routes(app, self)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        app.on_cleanup.append(self._on_shutdown)
        return app

    async def _on_startup(self, _app: web.Application) -> None:
        self.closing = False
        if self.webhook is not None:
            self.ensure_webhook_worker()

    async def _on_shutdown(self, _app: web.Application) -> None:
        # Wake long polls so the server's graceful shutdown does not wait for their timeout.
        self.closing = True
        self.notify()
        task, self._webhook_task = self._webhook_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the app on host:port (0 = any free port); returns the API root URL."""
        if self._app_used:
            self.app = self._build_app()  # an aiohttp app cannot be served twice
        self._app_used = True
        self._runner = web.AppRunner(self.app, shutdown_timeout=2.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None and getattr(server, "sockets", None)
        bound = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.base_url = f"http://{host}:{bound}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> TelegramSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _root(self) -> str:
        if self.base_url is None:
            raise SimError("the simulator is not started; use await sim.start()")
        return self.base_url

    @property
    def api_root(self) -> str:
        """The bridge's TELEGRAM_API_URL (after start())."""
        return self._root()

    @property
    def bot_base_url(self) -> str:
        """PTB ``Bot(base_url=...)`` (after start())."""
        return self._root() + "/bot"

    @property
    def file_base_url(self) -> str:
        """PTB ``Bot(base_file_url=...)`` (after start())."""
        return self._root() + "/file/bot"

    # ------------------------------------------------------------------ change notification

    def notify(self) -> None:
        """Wake everything waiting on state changes (long polls, webhook, wait_for_*)."""
        self.version += 1
        event = self._changed
        self._changed = asyncio.Event()
        self._changed_loop = None
        event.set()

    async def wait_changed(self, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        if self._changed_loop is not loop:
            # An Event binds to the first loop that waits on it; tests use a loop each.
            if self._changed_loop is not None:
                self._changed = asyncio.Event()
            self._changed_loop = loop
        event = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    async def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition"
    ) -> Any:
        """Wait until predicate() is truthy (re-checked on every state change)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            await self.wait_changed(min(remaining, 0.5))

    async def wait_for_sent(
        self, chat_id: int, count: int = 1, timeout: float = 5.0
    ) -> list[SimMessage]:
        """Wait until the bot has sent at least ``count`` messages to chat_id."""

        def enough() -> list[SimMessage] | None:
            sent = self.sent(chat_id)
            return sent if len(sent) >= count else None

        try:
            result: list[SimMessage] = await self.wait_for(enough, timeout, "sent messages")
        except TimeoutError:
            texts = [m.content for m in self.sent(chat_id)]
            raise TimeoutError(
                f"expected {count} messages to chat {chat_id} within {timeout}s, got {texts!r}"
            ) from None
        return result

    # ------------------------------------------------------------------ state helpers

    def bot_user(self, full: bool = False) -> JSON:
        data: JSON = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }
        if full:
            data.update(
                {
                    "can_join_groups": True,
                    "can_read_all_group_messages": False,
                    "supports_inline_queries": False,
                    "can_connect_to_business": False,
                    "has_main_web_app": False,
                }
            )
        return data

    def lookup_user(self, user_id: int) -> JSON | None:
        user = self.users.get(user_id)
        return user.to_json() if user else None

    def resolve_chat(self, chat_id: int | str) -> SimChat:
        if isinstance(chat_id, str):
            name = chat_id.lstrip("@").lower()
            for chat in self.chats.values():
                if chat.user is not None and (chat.user.username or "").lower() == name:
                    return chat
            raise _chat_not_found()
        found = self.chats.get(int(chat_id))
        if found is None:
            raise _chat_not_found()
        return found

    def find_message(self, chat_id: int, message_id: int) -> SimMessage | None:
        message = self.messages.get(chat_id, {}).get(message_id)
        return None if message is None or message.deleted else message

    def store_sent(self, message: SimMessage) -> None:
        self.messages.setdefault(message.chat_id, {})[message.message_id] = message
        self.limiter.record(message.chat_id)
        self.stats["sent"] += 1
        self.notify()

    def _next_file_number(self) -> int:
        self._file_counter += 1
        return self._file_counter

    def store_file(
        self,
        kind: str,
        data: bytes,
        *,
        mime_type: str | None = None,
        file_name: str | None = None,
        width: int | None = None,
        height: int | None = None,
        reported_size: int | None = None,
    ) -> StoredFile:
        stored = StoredFile(
            kind=kind,
            data=data,
            number=self._next_file_number(),
            mime_type=mime_type,
            file_name=file_name,
            width=width,
            height=height,
            reported_size=reported_size,
        )
        self.files[stored.file_id] = stored
        self.files_by_path[stored.file_path] = stored
        return stored

    def store_photo(
        self, data: bytes, width: int, height: int, reported_size: int | None = None
    ) -> list[StoredFile]:
        """A photo as Telegram returns it: smaller renditions first, the original last."""
        sizes: list[StoredFile] = []
        for side in media.PHOTO_SIDES:
            if side >= max(width, height):
                break
            w, h = media.scaled(width, height, side)
            thumb = media.make_jpeg(w, h, label=f"sim thumbnail {self._file_counter + 1}")
            sizes.append(self.store_file("photo", thumb, mime_type="image/jpeg", width=w, height=h))
        info = media.image_info(data)
        sizes.append(
            self.store_file(
                "photo",
                data,
                mime_type=info[0] if info else "image/jpeg",
                width=width,
                height=height,
                reported_size=reported_size,
            )
        )
        for size in sizes:
            self.photo_sizes[size.file_id] = sizes
        return sizes

    def media_json(self, kind: str, files: list[StoredFile], extra: Mapping[str, Any]) -> Any:
        """The Telegram object (PhotoSize array, Document, Voice, ...) for stored file(s)."""

        def num(key: str, default: int) -> int:
            try:
                return int(extra.get(key, default))
            except (TypeError, ValueError):
                return default

        if kind == "photo":
            return [f.photo_size_json() for f in files]
        stored = files[-1]
        data = stored.base_json()
        if kind in ("document", "audio", "video", "animation") and stored.file_name:
            data["file_name"] = stored.file_name
        if kind in ("document", "audio", "video", "voice", "animation") and stored.mime_type:
            data["mime_type"] = stored.mime_type
        if kind in ("audio", "video", "voice", "video_note", "animation"):
            data["duration"] = num("duration", 1)
        if kind in ("video", "animation"):
            data["width"] = num("width", stored.width or 640)
            data["height"] = num("height", stored.height or 360)
        if kind == "audio":
            for key in ("title", "performer"):
                if extra.get(key):
                    data[key] = str(extra[key])
        if kind == "video_note":
            data["length"] = num("length", stored.width or 240)
        if kind == "sticker":
            data.update(
                {
                    "type": "regular",
                    "width": num("width", 512),
                    "height": num("height", 512),
                    "is_animated": bool(extra.get("is_animated", False)),
                    "is_video": bool(extra.get("is_video", False)),
                }
            )
            if extra.get("emoji"):
                data["emoji"] = str(extra["emoji"])
            if extra.get("set_name"):
                data["set_name"] = str(extra["set_name"])
        return data

    def record_chat_action(self, chat_id: int, action: str) -> None:
        self.chat_action_log.append({"chat_id": chat_id, "action": action, "time": time.time()})
        self.notify()

    def answer_callback(self, query_id: str, answer: JSON) -> None:
        query = self.callback_queries.get(query_id)
        if query is None or query["answered"]:
            raise _query_invalid()
        query["answered"] = True
        query["answer"] = answer
        self.callback_answers.append(answer)
        self.notify()

    def take_fault(self, method: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(method):
                fault.fired += 1
                if fault.count is not None:
                    fault.count -= 1
                return fault
        return None

    def log_request(self, method: str, params: Any, status: int, error: str | None) -> None:
        logged = params.loggable() if params is not None else None
        self.requests.append(RequestRecord(time.time(), method, logged, status, error))
        if len(self.requests) > 5000:
            del self.requests[:1000]

    # ------------------------------------------------------------------ updates

    def set_allowed_updates(self, allowed: Any) -> None:
        if isinstance(allowed, list):
            self.allowed_updates = [str(a) for a in allowed] or None

    def _update_allowed(self, kind: str) -> bool:
        allowed = self.webhook.allowed_updates if self.webhook else None
        allowed = allowed if allowed is not None else self.allowed_updates
        if allowed is None:
            return kind in DEFAULT_UPDATE_TYPES
        return kind in allowed

    def confirm_updates(self, offset: int) -> None:
        """getUpdates' offset semantics: ids below a positive offset are forgotten; a
        negative offset keeps only the last -offset updates."""
        if offset > 0:
            self.updates[:] = [u for u in self.updates if u["update_id"] >= offset]
        elif offset < 0:
            self.updates[:] = self.updates[offset:]

    def _enqueue(self, kind: str, body: JSON) -> Injected:
        update = {"update_id": self.next_update_id, kind: copy.deepcopy(body)}
        self.next_update_id += 1
        queued = self._update_allowed(kind)
        if queued:
            self.updates.append(update)
            if self.webhook is not None:
                self.ensure_webhook_worker()
        self.stats["updates"] += 1
        self.notify()
        return Injected(update=copy.deepcopy(update), queued=queued)

    def ensure_webhook_worker(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # started by the app's on_startup instead
        task = self._webhook_task
        if task is None or task.done() or task.get_loop() is not loop:
            self._webhook_task = loop.create_task(deliver_forever(self))

    def webhook_info(self) -> JSON:
        if self.webhook is None:
            pending = len(self.updates)
            return {"url": "", "has_custom_certificate": False, "pending_update_count": pending}
        return self.webhook.info(len(self.updates))

    def pending_updates(self) -> list[JSON]:
        return copy.deepcopy(self.updates)

    def inject_update(self, update: Mapping[str, Any]) -> Injected:
        """Queue a hand-made update (any type); its update_id is assigned here."""
        kinds = [k for k in update if k != "update_id"]
        if len(kinds) != 1:
            raise SimError("an update must have exactly one field besides update_id")
        return self._enqueue(kinds[0], dict(update[kinds[0]]))

    # ------------------------------------------------------------------ users and chats

    def add_user(
        self,
        user_id: int,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        is_premium: bool | None = None,
    ) -> SimUser:
        """Create or update a user (and their private chat, whose id is the user id).
        Arguments left as None keep their value; a new user speaks "en" by default."""
        user = self.users.get(user_id)
        if user is None:
            user = SimUser(id=user_id, first_name=first_name or f"User{user_id}")
            self.users[user_id] = user
        elif first_name:
            user.first_name = first_name
        if last_name is not None:
            user.last_name = last_name
        if username is not None:
            user.username = username
        if language_code is not None:
            user.language_code = language_code
        if is_premium is not None:
            user.is_premium = is_premium
        if user_id not in self.chats:
            self.chats[user_id] = SimChat(id=user_id, type="private", user=user)
        self.notify()
        return user

    def add_group(self, chat_id: int, title: str = "Test group", type: str = "group") -> SimChat:
        if chat_id >= 0:
            raise SimError("group and supergroup ids are negative")
        chat = self.chats.get(chat_id)
        if chat is None:
            chat = SimChat(id=chat_id, type=type, title=title)
            self.chats[chat_id] = chat
        return chat

    def user(self, user: UserRef) -> SimUser:
        if isinstance(user, SimUser):
            return self.users.get(user.id) or self.add_user(
                user.id, user.first_name, user.last_name, user.username, user.language_code
            )
        if isinstance(user, Mapping):
            if "id" not in user:
                raise SimError("a user needs an id")
            return self.add_user(
                int(user["id"]),
                first_name=user.get("first_name"),
                last_name=user.get("last_name"),
                username=user.get("username"),
                language_code=user.get("language_code"),
                is_premium=user.get("is_premium"),
            )
        return self.users.get(int(user)) or self.add_user(int(user))

    def _chat_for(self, user: SimUser, chat_id: int | None) -> SimChat:
        if chat_id is None or chat_id == user.id:
            return self.chats[user.id]
        chat = self.chats.get(chat_id)
        return chat if chat is not None else self.add_group(chat_id)

    # ------------------------------------------------------------------ injecting user actions

    def _user_message(
        self,
        user_ref: UserRef,
        fields: JSON,
        chat_id: int | None = None,
        *,
        reply_to: int | None = None,
    ) -> tuple[SimMessage, Injected]:
        user = self.user(user_ref)
        if user.blocked:
            # Writing to a blocked bot means restarting it first, which unblocks it.
            self.unblock(user.id)
        chat = self._chat_for(user, chat_id)
        message_id = chat.take_message_id()
        payload: JSON = {
            "message_id": message_id,
            "from": user.to_json(),
            "chat": chat.to_json(),
            "date": int(time.time()),
        }
        reply_message = None
        if reply_to is not None:
            reply_message = self.find_message(chat.id, reply_to)
            if reply_message is None:
                raise SimError(f"no message {reply_to} in chat {chat.id} to reply to")
            payload["reply_to_message"] = {
                k: v for k, v in reply_message.payload.items() if k != "reply_to_message"
            }
        payload.update(fields)
        message = SimMessage(
            chat_id=chat.id,
            message_id=message_id,
            date=payload["date"],
            outgoing=False,
            method="user",
            payload=payload,
            text=fields.get("text"),
            entities=list(fields.get("entities", [])),
            caption=fields.get("caption"),
            caption_entities=list(fields.get("caption_entities", [])),
            media_group_id=fields.get("media_group_id"),
            reply_to_message_id=reply_to,
        )
        self.messages.setdefault(chat.id, {})[message_id] = message
        return message, self._enqueue("message", payload)

    def _text_fields(
        self, text: str, entities: Sequence[Mapping[str, Any]] | None, key: str = "text"
    ) -> JSON:
        if entities is None:
            found = formatting.detect_entities(text)
        else:
            try:
                found = formatting.validate_entities(text, list(entities), self.lookup_user)
            except formatting.EntityValidationError as exc:
                raise SimError(str(exc)) from None
        fields: JSON = {key: text}
        if found:
            fields["entities" if key == "text" else "caption_entities"] = formatting.sort_entities(
                found
            )
        return fields

    def inject_text(
        self,
        user: UserRef,
        text: str,
        *,
        entities: Sequence[Mapping[str, Any]] | None = None,
        reply_to: int | None = None,
        chat_id: int | None = None,
    ) -> Injected:
        """The user sends a text message. Without ``entities`` the server-side detection
        (commands, URLs, mentions, hashtags, e-mails) is applied."""
        if not text:
            raise SimError("text must be non-empty")
        _msg, injected = self._user_message(
            user, self._text_fields(text, entities), chat_id, reply_to=reply_to
        )
        return injected

    def inject_command(
        self,
        user: UserRef,
        command: str,
        payload: str | None = None,
        *,
        chat_id: int | None = None,
    ) -> Injected:
        """The user sends ``/command [payload]`` (e.g. a /start deep link)."""
        command = command if command.startswith("/") else "/" + command
        if chat_id is not None and chat_id < 0 and "@" not in command:
            command = f"{command}@{self.bot_username}"
        text = command if not payload else f"{command} {payload}"
        entities = [{"type": "bot_command", "offset": 0, "length": formatting.utf16_len(command)}]
        return self.inject_text(user, text, entities=entities, chat_id=chat_id)

    def _media_message(
        self,
        user: UserRef,
        kind: str,
        value: Any,
        caption: str | None,
        caption_entities: Sequence[Mapping[str, Any]] | None,
        chat_id: int | None,
        media_group_id: str | None = None,
    ) -> Injected:
        fields: JSON = {kind: value}
        if caption:
            fields.update(self._text_fields(caption, caption_entities, key="caption"))
        if media_group_id:
            fields["media_group_id"] = media_group_id
        message, injected = self._user_message(user, fields, chat_id)
        message.media_kind = kind
        return injected

    def _attach_files(self, injected: Injected, files: list[StoredFile]) -> None:
        message_id = injected.message_id
        chat = (injected.message or {}).get("chat", {})
        stored = self.messages.get(chat.get("id", 0), {}).get(message_id or 0)
        if stored is not None:
            stored.files = files

    def inject_photo(
        self,
        user: UserRef,
        data: bytes | None = None,
        *,
        caption: str | None = None,
        caption_entities: Sequence[Mapping[str, Any]] | None = None,
        file_size: int | None = None,
        width: int = 1280,
        height: int = 960,
        media_group_id: str | None = None,
        chat_id: int | None = None,
    ) -> Injected:
        """The user sends a photo. ``data`` must be an image (JPEG/PNG/...); without it a
        grey JPEG of width x height is generated. ``file_size`` overrides the reported size
        (set it above 20 MB to make getFile fail with "file is too big")."""
        if data is None:
            data = media.make_jpeg(width, height, label=f"sim photo {self._file_counter + 1}")
        info = media.image_info(data)
        if info is None:
            raise SimError("photo data is not a recognisable image")
        sizes = self.store_photo(data, info[1], info[2], reported_size=file_size)
        injected = self._media_message(
            user,
            "photo",
            [s.photo_size_json() for s in sizes],
            caption,
            caption_entities,
            chat_id,
            media_group_id,
        )
        self._attach_files(injected, sizes)
        return injected

    def _inject_file(
        self,
        user: UserRef,
        kind: str,
        data: bytes | None,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        file_size: int | None = None,
        caption: str | None = None,
        caption_entities: Sequence[Mapping[str, Any]] | None = None,
        chat_id: int | None = None,
        media_group_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Injected:
        placeholder, default_mime, default_name = media.PLACEHOLDERS[kind]
        if data is None:
            data = placeholder
            mime_type = mime_type or default_mime
            if kind in ("document", "audio", "video", "animation"):
                file_name = file_name or default_name
        extra = dict(extra or {})
        stored = self.store_file(
            kind,
            data,
            mime_type=mime_type or default_mime,
            file_name=file_name,
            width=extra.get("width") or extra.get("length"),
            height=extra.get("height"),
            reported_size=file_size,
        )
        injected = self._media_message(
            user,
            kind,
            self.media_json(kind, [stored], extra),
            caption,
            caption_entities,
            chat_id,
            media_group_id,
        )
        self._attach_files(injected, [stored])
        return injected

    def inject_document(
        self,
        user: UserRef,
        data: bytes | None = None,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        caption: str | None = None,
        caption_entities: Sequence[Mapping[str, Any]] | None = None,
        file_size: int | None = None,
        media_group_id: str | None = None,
        chat_id: int | None = None,
    ) -> Injected:
        """The user sends a file (default: a tiny PDF named document.pdf)."""
        if data is not None and file_name is None:
            file_name = "file.bin"
        return self._inject_file(
            user,
            "document",
            data,
            file_name=file_name,
            mime_type=mime_type,
            file_size=file_size,
            caption=caption,
            caption_entities=caption_entities,
            chat_id=chat_id,
            media_group_id=media_group_id,
        )

    def inject_voice(
        self,
        user: UserRef,
        data: bytes | None = None,
        *,
        duration: int = 3,
        mime_type: str = "audio/ogg",
        caption: str | None = None,
        file_size: int | None = None,
        chat_id: int | None = None,
    ) -> Injected:
        return self._inject_file(
            user,
            "voice",
            data,
            mime_type=mime_type,
            file_size=file_size,
            caption=caption,
            chat_id=chat_id,
            extra={"duration": duration},
        )

    def inject_audio(
        self,
        user: UserRef,
        data: bytes | None = None,
        *,
        duration: int = 30,
        title: str | None = None,
        performer: str | None = None,
        file_name: str | None = None,
        mime_type: str | None = None,
        caption: str | None = None,
        file_size: int | None = None,
        media_group_id: str | None = None,
        chat_id: int | None = None,
    ) -> Injected:
        return self._inject_file(
            user,
            "audio",
            data,
            file_name=file_name,
            mime_type=mime_type,
            file_size=file_size,
            caption=caption,
            chat_id=chat_id,
            media_group_id=media_group_id,
            extra={"duration": duration, "title": title, "performer": performer},
        )

    def inject_video(
        self,
        user: UserRef,
        data: bytes | None = None,
        *,
        duration: int = 5,
        width: int = 640,
        height: int = 360,
        file_name: str | None = None,
        mime_type: str | None = None,
        caption: str | None = None,
        caption_entities: Sequence[Mapping[str, Any]] | None = None,
        file_size: int | None = None,
        media_group_id: str | None = None,
        chat_id: int | None = None,
    ) -> Injected:
        return self._inject_file(
            user,
            "video",
            data,
            file_name=file_name,
            mime_type=mime_type,
            file_size=file_size,
            caption=caption,
            caption_entities=caption_entities,
            chat_id=chat_id,
            media_group_id=media_group_id,
            extra={"duration": duration, "width": width, "height": height},
        )

    def inject_video_note(
        self,
        user: UserRef,
        data: bytes | None = None,
        *,
        duration: int = 5,
        length: int = 240,
        file_size: int | None = None,
        chat_id: int | None = None,
    ) -> Injected:
        return self._inject_file(
            user,
            "video_note",
            data,
            file_size=file_size,
            chat_id=chat_id,
            extra={"duration": duration, "length": length},
        )

    def inject_sticker(
        self,
        user: UserRef,
        data: bytes | None = None,
        *,
        emoji: str = "👍",
        set_name: str | None = "SimStickers",
        is_animated: bool = False,
        is_video: bool = False,
        chat_id: int | None = None,
    ) -> Injected:
        return self._inject_file(
            user,
            "sticker",
            data,
            chat_id=chat_id,
            mime_type="video/webm" if is_video else None,
            extra={
                "emoji": emoji,
                "set_name": set_name,
                "is_animated": is_animated,
                "is_video": is_video,
                "width": 512,
                "height": 512,
            },
        )

    def inject_location(
        self,
        user: UserRef,
        latitude: float,
        longitude: float,
        *,
        live_period: int | None = None,
        chat_id: int | None = None,
    ) -> Injected:
        location: JSON = {"latitude": latitude, "longitude": longitude}
        if live_period:
            location["live_period"] = live_period
        _msg, injected = self._user_message(user, {"location": location}, chat_id)
        return injected

    def inject_contact(
        self,
        user: UserRef,
        phone_number: str,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        contact_user_id: int | None = None,
        own: bool = True,
        chat_id: int | None = None,
    ) -> Injected:
        """The user shares a contact. With ``own`` (the request_contact button) the contact
        is the sender: user_id and names default to theirs."""
        sender = self.user(user)
        contact: JSON = {
            "phone_number": phone_number,
            "first_name": first_name or (sender.first_name if own else "Contact"),
        }
        last = last_name if last_name is not None else (sender.last_name if own else None)
        if last:
            contact["last_name"] = last
        uid = contact_user_id if contact_user_id is not None else (sender.id if own else None)
        if uid is not None:
            contact["user_id"] = uid
        _msg, injected = self._user_message(sender, {"contact": contact}, chat_id)
        return injected

    def inject_album(
        self,
        user: UserRef,
        items: Sequence[Mapping[str, Any]],
        *,
        chat_id: int | None = None,
    ) -> list[Injected]:
        """Several photos/videos (or documents, or audios) sent together: one update per
        item, all sharing a media_group_id. Item keys: type ("photo" | "video" | "document"
        | "audio"), data (bytes, optional), caption, caption_entities, file_name, mime_type,
        file_size."""
        if not 2 <= len(items) <= 10:
            raise SimError("an album has 2-10 items")
        group_id = str(secrets.randbelow(9 * 10**17) + 10**17)
        result: list[Injected] = []
        for item in items:
            kind = item.get("type", "photo")
            common: JSON = {
                "caption": item.get("caption"),
                "caption_entities": item.get("caption_entities"),
                "file_size": item.get("file_size"),
                "media_group_id": group_id,
                "chat_id": chat_id,
            }
            if kind == "photo":
                result.append(self.inject_photo(user, item.get("data"), **common))
            elif kind == "video":
                result.append(self.inject_video(user, item.get("data"), **common))
            elif kind == "document":
                result.append(
                    self.inject_document(
                        user,
                        item.get("data"),
                        file_name=item.get("file_name"),
                        mime_type=item.get("mime_type"),
                        **common,
                    )
                )
            elif kind == "audio":
                common.pop("caption_entities")
                result.append(self.inject_audio(user, item.get("data"), **common))
            else:
                raise SimError(f"unsupported album item type {kind!r}")
        return result

    def inject_edit(
        self,
        user: UserRef,
        message_id: int,
        *,
        text: str | None = None,
        caption: str | None = None,
        entities: Sequence[Mapping[str, Any]] | None = None,
        chat_id: int | None = None,
    ) -> Injected:
        """The user edits one of their earlier messages (an ``edited_message`` update)."""
        sender = self.user(user)
        chat = self._chat_for(sender, chat_id)
        message = self.find_message(chat.id, message_id)
        if message is None or message.outgoing:
            raise SimError(f"no message {message_id} from user {sender.id} in chat {chat.id}")
        message.edits.append(message.snapshot())
        payload = message.payload
        if text is not None:
            if message.text is None:
                raise SimError("that message has no text; edit its caption instead")
            fields = self._text_fields(text, entities)
            message.text = text
            message.entities = list(fields.get("entities", []))
            payload.pop("entities", None)
            payload.update(fields)
        if caption is not None:
            fields = self._text_fields(caption, entities, key="caption")
            message.caption = caption
            message.caption_entities = list(fields.get("caption_entities", []))
            payload.pop("caption_entities", None)
            payload.update(fields)
        payload["edit_date"] = int(time.time())
        return self._enqueue("edited_message", payload)

    def inject_callback(
        self,
        user: UserRef,
        message_id: int,
        data: str | None = None,
        *,
        button_text: str | None = None,
        chat_id: int | None = None,
    ) -> Injected:
        """The user presses an inline button on bot message ``message_id``: give the
        ``data`` directly or the ``button_text`` to look its callback_data up."""
        sender = self.user(user)
        chat = self._chat_for(sender, chat_id)
        message = self.find_message(chat.id, message_id)
        if message is None or not message.outgoing:
            raise SimError(f"no bot message {message_id} in chat {chat.id}")
        if data is None:
            rows = (message.payload.get("reply_markup") or {}).get("inline_keyboard", [])
            buttons = [b for row in rows for b in row if "callback_data" in b]
            if button_text is not None:
                buttons = [b for b in buttons if b.get("text") == button_text]
            if len(buttons) != 1:
                raise SimError(f"message {message_id} has {len(buttons)} matching callback buttons")
            data = str(buttons[0]["callback_data"])
        query_id = str(secrets.randbelow(9 * 10**18) + 10**18)
        query: JSON = {
            "id": query_id,
            "from": sender.to_json(),
            "message": copy.deepcopy(message.payload),
            "chat_instance": str(abs(hash((self.bot_id, chat.id))) % 10**19),
            "data": data,
        }
        self.callback_queries[query_id] = {"query": query, "answered": False, "answer": None}
        return self._enqueue("callback_query", query)

    def _member_update(self, user: SimUser, old: str, new: str) -> Injected:
        bot = self.bot_user()
        new_member: JSON = {"user": bot, "status": new}
        if new == "kicked":
            new_member["until_date"] = 0
        old_member: JSON = {"user": bot, "status": old}
        if old == "kicked":
            old_member["until_date"] = 0
        return self._enqueue(
            "my_chat_member",
            {
                "chat": self.chats[user.id].to_json(),
                "from": user.to_json(),
                "date": int(time.time()),
                "old_chat_member": old_member,
                "new_chat_member": new_member,
            },
        )

    def block(self, user: UserRef) -> Injected:
        """The user blocks the bot: sends to them answer 403 "Forbidden: bot was blocked by
        the user" and the bot gets a my_chat_member update (member -> kicked)."""
        target = self.user(user)
        target.blocked = True
        return self._member_update(target, "member", "kicked")

    def unblock(self, user: UserRef) -> Injected:
        """The user restarts the bot (my_chat_member kicked -> member)."""
        target = self.user(user)
        target.blocked = False
        return self._member_update(target, "kicked", "member")

    def deactivate(self, user: UserRef) -> None:
        """The user deletes their account: sends answer 403 "Forbidden: user is deactivated"."""
        self.user(user).deactivated = True

    def set_file_size(self, file_id: str, size: int) -> StoredFile:
        """Make a file report ``size`` bytes (e.g. 21 MB so getFile answers "file is too
        big"); the stored bytes are unchanged."""
        stored = self.file(file_id)
        stored.reported_size = size
        return stored

    # ------------------------------------------------------------------ reading what the bot did

    def sent(self, chat_id: int | None = None) -> list[SimMessage]:
        """Messages the bot sent (edited and deleted ones included, flagged), oldest first."""
        chats = [chat_id] if chat_id is not None else list(self.messages)
        result = [m for c in chats for m in self.messages.get(c, {}).values() if m.outgoing]
        if chat_id is None:
            result.sort(key=lambda m: (m.sent_at, m.message_id))
        return result

    def history(self, chat_id: int) -> list[SimMessage]:
        """Both sides of a chat in message_id order."""
        return list(self.messages.get(chat_id, {}).values())

    def message(self, chat_id: int, message_id: int) -> SimMessage:
        message = self.messages.get(chat_id, {}).get(message_id)
        if message is None:
            raise SimError(f"no message {message_id} in chat {chat_id}")
        return message

    def chat_actions(self, chat_id: int | None = None) -> list[JSON]:
        return [a for a in self.chat_action_log if chat_id is None or a["chat_id"] == chat_id]

    def keyboard(self, chat_id: int) -> JSON | None:
        """The reply keyboard the user currently sees in chat_id, if any."""
        chat = self.chats.get(chat_id)
        return chat.keyboard if chat else None

    def file(self, file_id: str) -> StoredFile:
        stored = self.files.get(file_id)
        if stored is None:
            raise SimError(f"unknown file_id {file_id!r}")
        return stored

    def file_bytes(self, file_id: str) -> bytes:
        return self.file(file_id).data

    def calls(self, method: str | None = None) -> list[RequestRecord]:
        """The Bot API request log, optionally for one method (case-insensitive)."""
        return [r for r in self.requests if method is None or r.method.lower() == method.lower()]

    # ------------------------------------------------------------------ limits, faults, reset

    def enforce_limits(
        self,
        enabled: bool = True,
        *,
        per_chat_interval: float = 1.0,
        global_per_second: int = 30,
        group_per_minute: int = 20,
    ) -> None:
        """Turn Telegram's flood limits on (429 with retry_after) or off."""
        self.limiter.enabled = enabled
        self.limiter.per_chat_interval = per_chat_interval
        self.limiter.global_per_second = global_per_second
        self.limiter.group_per_minute = group_per_minute

    def sent_per_second(self, chat_id: int | None = None) -> dict[int, int]:
        return self.limiter.per_second(chat_id)

    def max_sent_per_second(self, chat_id: int | None = None) -> int:
        """The most messages sent within any sliding second."""
        return self.limiter.max_in_window(1.0, chat_id)

    def inject_fault(
        self,
        method: str | None = None,
        kind: str = "http_500",
        count: int | None = 1,
        delay: float = 0.0,
        retry_after: int | None = None,
        location: str | None = None,
    ) -> Fault:
        """Make the next ``count`` matching requests misbehave (None = until cleared).

        kinds: http_500, http_502 (nginx HTML body), drop_connection (close the socket
        without answering, after ``delay``), retry_after (429 with retry_after, default
        ``delay`` rounded up or 1), latency (sleep ``delay`` then answer normally),
        truncate_download (file downloads: send half the body, then close), redirect (302
        to ``location`` as a proxy or captive portal in front of the Bot API answers: the
        requested URL, bot token and all, percent-encoded as ``return_to`` in the Location
        and in the HTML body).
        ``method`` None matches every request; "file" matches file downloads.
        """
        if kind not in FAULT_KINDS:
            raise SimError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if kind == "redirect" and not location:
            raise SimError("a redirect fault needs a location")
        if retry_after is None:
            retry_after = max(1, int(delay + 0.999)) if delay else 1
        fault = Fault(
            kind=kind,
            method=method,
            count=count,
            delay=delay,
            retry_after=retry_after,
            location=location,
        )
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def reset(self) -> None:
        """Forget users, chats, messages, files, updates, webhook, faults, stats; limits off."""
        self._init_state()
        self.limiter.enabled = False
        self.limiter.reset()
        self.stats.clear()
        self.requests.clear()
        self.notify()

    def summary(self) -> JSON:
        return {
            "bot": self.bot_user(full=True),
            "users": [u.to_json() | {"blocked": u.blocked} for u in self.users.values()],
            "chats": [c.to_json() for c in self.chats.values()],
            "pending_updates": len(self.updates),
            "webhook": self.webhook_info(),
            "limits_enforced": self.limiter.enabled,
            "faults": [f.to_json() for f in self.faults],
            "stats": dict(self.stats),
        }


def _chat_not_found() -> ApiError:
    return ApiError(400, "Bad Request: chat not found")


def _query_invalid() -> ApiError:
    return ApiError(
        400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
    )
