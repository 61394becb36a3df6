"""The Bot API surface: ``/bot{token}/{method}`` and ``/file/bot{token}/{file_path}``.

Each method validates like the real server (same HTTP codes, same ``description`` strings,
since bots branch on them), updates the simulator's state and answers with the same JSON
shapes, so python-telegram-bot builds its objects without noticing the difference.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import mimetypes
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

import aiohttp
from aiohttp import web

from . import formatting, media
from .button_urls import button_url_problem
from .formatting import EntityParseError, EntityValidationError, UnsupportedParseMode
from .params import Params, read_params
from .state import (
    JSON,
    MAX_DOWNLOAD_SIZE,
    ApiError,
    Fault,
    SimChat,
    SimMessage,
    StoredFile,
    bad_request,
)
from .webhook import WebhookConfig

if TYPE_CHECKING:
    from .simulator import TelegramSimulator

Handler = Callable[[Params], Awaitable[Any]]
log = logging.getLogger(__name__)

CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
INLINE_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
# Methods a bot may call at start-up that need no behaviour beyond "accepted".
ACCEPTED_METHODS = (
    "setMyDescription",
    "setMyShortDescription",
    "setMyName",
    "setChatMenuButton",
    "setMyDefaultAdministratorRights",
    "logOut",
    "close",
)
# What sendDocument accepts by URL on the real server (anything else must be uploaded).
DOCUMENT_URL_TYPES = ("application/pdf", "application/zip", "image/gif")
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)


class WithDescription:
    """A result that also carries the top-level ``description`` (setWebhook does this)."""

    def __init__(self, result: Any, description: str) -> None:
        self.result = result
        self.description = description


def _json_response(body: JSON, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


class BotApi:
    def __init__(self, sim: TelegramSimulator) -> None:
        self.sim = sim
        self.methods: dict[str, Handler] = {}
        for name in (
            "getMe",
            "getUpdates",
            "setWebhook",
            "deleteWebhook",
            "getWebhookInfo",
            "sendMessage",
            "editMessageText",
            "editMessageCaption",
            "editMessageReplyMarkup",
            "deleteMessage",
            "deleteMessages",
            "sendPhoto",
            "sendDocument",
            "sendAudio",
            "sendVideo",
            "sendVoice",
            "sendVideoNote",
            "sendAnimation",
            "sendSticker",
            "sendMediaGroup",
            "sendChatAction",
            "answerCallbackQuery",
            "getFile",
            "setMyCommands",
            "getMyCommands",
            "deleteMyCommands",
            "getChat",
        ):
            self.methods[name.lower()] = getattr(self, name)
        for name in ACCEPTED_METHODS:
            self.methods[name.lower()] = self._accepted

    # ------------------------------------------------------------------ HTTP entry points

    async def handle(self, request: web.Request) -> web.StreamResponse:
        sim = self.sim
        method = request.match_info["method"]
        if request.match_info["token"] != sim.bot_token:
            return _json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, 401
            )
        sim.stats["requests"] += 1
        sim.stats[f"method.{method}"] += 1
        fault = sim.take_fault(method)
        if fault is not None:
            response = await self._apply_fault(request, fault, method)
            if response is not None:
                return response
        params: Params | None = None
        try:
            params = await read_params(request)
            handler = self.methods.get(method.lower())
            if handler is None:
                raise ApiError(404, "Not Found")
            result = await handler(params)
        except ApiError as exc:
            sim.stats["errors"] += 1
            if exc.code == 429:
                sim.stats["429"] += 1
            sim.log_request(method, params, exc.code, exc.description)
            return _json_response(exc.to_json(), exc.code)
        except Exception as exc:
            # A simulator bug: answer like Telegram's 500 but keep the cause for the test.
            log.exception("telegram simulator failed in %s", method)
            sim.stats["errors"] += 1
            sim.log_request(method, params, 500, f"simulator error: {exc!r}")
            return _json_response(
                {"ok": False, "error_code": 500, "description": "Internal Server Error"}, 500
            )
        body: JSON = {"ok": True}
        if isinstance(result, WithDescription):
            body["result"] = result.result
            body["description"] = result.description
        else:
            body["result"] = result
        sim.log_request(method, params, 200, None)
        return _json_response(body)

    async def handle_file(self, request: web.Request) -> web.StreamResponse:
        sim = self.sim
        if request.match_info["token"] != sim.bot_token:
            return _json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, 401
            )
        stored = sim.files_by_path.get(request.match_info["file_path"])
        if stored is None:
            return _json_response({"ok": False, "error_code": 404, "description": "Not Found"}, 404)
        fault = sim.take_fault("file")
        if fault is not None:
            if fault.kind == "truncate_download":
                return await self._truncated(request, stored)
            response = await self._apply_fault(request, fault, "file")
            if response is not None:
                return response
        sim.stats["downloads"] += 1
        return web.Response(body=stored.data, content_type=stored.content_type)

    async def _truncated(self, request: web.Request, stored: StoredFile) -> web.StreamResponse:
        # Promise the full length, send half, then cut the connection mid-body.
        response = web.StreamResponse(status=200, headers={"Content-Length": str(len(stored.data))})
        response.content_type = stored.content_type
        await response.prepare(request)
        await response.write(stored.data[: max(1, len(stored.data) // 2)])
        if request.transport is not None:
            request.transport.close()
        return response

    async def _apply_fault(
        self, request: web.Request, fault: Fault, method: str
    ) -> web.StreamResponse | None:
        """Act out a fault; None means "now answer normally" (latency)."""
        sim = self.sim
        sim.stats[f"fault.{fault.kind}"] += 1
        sim.log_request(method, None, 0, f"fault {fault.kind}")
        if fault.kind == "latency":
            await asyncio.sleep(fault.delay)
            return None
        if fault.kind == "http_500":
            return _json_response(
                {"ok": False, "error_code": 500, "description": "Internal Server Error"}, 500
            )
        if fault.kind == "http_502":
            # Telegram's front end answers 502 with nginx's HTML page, not JSON.
            return web.Response(
                status=502,
                content_type="text/html",
                text="<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
                "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0"
                "</center>\r\n</body>\r\n</html>\r\n",
            )
        if fault.kind == "retry_after":
            sim.stats["429"] += 1
            retry = max(1, int(fault.retry_after))
            return _json_response(
                ApiError(
                    429, f"Too Many Requests: retry after {retry}", retry_after=retry
                ).to_json(),
                429,
            )
        if fault.kind == "redirect" and fault.location:
            # Telegram itself never redirects; a proxy or captive portal in front of it does,
            # to its login page with the address asked for (the bot token is in its path) as
            # the way back, and an HTML page saying so.
            back = quote(str(request.url), safe="")
            joiner = "&" if "?" in fault.location else "?"
            target = f"{fault.location}{joiner}return_to={back}"
            link = html.escape(target)
            return web.Response(
                status=302,
                headers={"Location": target},
                content_type="text/html",
                text=f"<html><head><title>302 Found</title></head><body>Found. Redirecting "
                f'to <a href="{link}">{link}</a></body></html>\r\n',
            )
        if fault.kind in ("drop_connection", "truncate_download"):
            if fault.delay:
                await asyncio.sleep(fault.delay)
            transport = request.transport
            if transport is not None:
                transport.abort()
            return web.Response(status=500)  # never reaches the client
        return None

    # ------------------------------------------------------------------ helpers

    def _target(self, params: Params) -> SimChat:
        chat = self.sim.resolve_chat(params.chat_id())
        self._check_reachable(chat)
        return chat

    def _check_reachable(self, chat: SimChat) -> None:
        user = chat.user
        if chat.type == "private" and user is not None:
            if user.deactivated:
                raise ApiError(403, "Forbidden: user is deactivated")
            if user.blocked:
                raise ApiError(403, "Forbidden: bot was blocked by the user")

    def _render(
        self, text: str, parse_mode: str | None, entities: Any, *, caption: bool = False
    ) -> tuple[str, list[JSON]]:
        try:
            return formatting.render(text, parse_mode, entities, self.sim.lookup_user)
        except EntityParseError as exc:
            raise bad_request(f"can't parse entities: {exc}") from None
        except EntityValidationError as exc:
            raise bad_request(str(exc)) from None
        except UnsupportedParseMode:
            raise bad_request("unsupported parse_mode") from None

    def _text(self, params: Params) -> tuple[str, list[JSON], str | None, str]:
        raw = params.get_str("text") or ""
        if not raw:
            raise bad_request("message text is empty")
        parse_mode = params.get_str("parse_mode") or None
        entities = params.get_json("entities", "can't parse entities JSON object")
        text, parsed = self._render(raw, parse_mode, entities)
        if not text:
            raise bad_request("message text is empty")
        if formatting.utf16_len(text) > formatting.MAX_TEXT_LENGTH:
            raise bad_request("message is too long")
        return text, parsed, parse_mode, raw

    def _caption(
        self, params: Params, prefix: str = ""
    ) -> tuple[str | None, list[JSON], str | None]:
        raw = params.get_str(f"{prefix}caption")
        parse_mode = params.get_str(f"{prefix}parse_mode") or None
        if not raw:
            return None, [], parse_mode
        entities = params.get_json(f"{prefix}caption_entities", "can't parse entities JSON object")
        text, parsed = self._render(raw, parse_mode, entities, caption=True)
        if formatting.utf16_len(text) > formatting.MAX_CAPTION_LENGTH:
            raise bad_request("message caption is too long")
        return (text or None), parsed, parse_mode

    def _markup(self, params: Params, chat: SimChat | None, *, inline_only: bool = False) -> Any:
        markup = params.get_json("reply_markup", "can't parse reply keyboard markup JSON object")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise bad_request("can't parse inline keyboard markup JSON object")
            for row in rows:
                for button in row:
                    self._check_inline_button(button)
            return {"inline_keyboard": rows}
        if inline_only:
            raise bad_request("can't parse inline keyboard markup JSON object")
        if "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise bad_request("can't parse reply keyboard markup JSON object")
            for row in rows:
                for button in row:
                    text = (
                        button
                        if isinstance(button, str)
                        else (button.get("text") if isinstance(button, dict) else None)
                    )
                    if not isinstance(text, str) or not text:
                        raise bad_request("can't parse keyboard button: text is empty")
            if chat is not None:
                chat.keyboard = markup
            return markup
        if markup.get("remove_keyboard"):
            if chat is not None:
                chat.keyboard = None
            return markup
        if markup.get("force_reply"):
            return markup
        raise bad_request("can't parse reply keyboard markup JSON object")

    @staticmethod
    def _check_inline_button(button: Any) -> None:
        if not isinstance(button, dict):
            raise bad_request("can't parse inline keyboard button: Object expected")
        text = button.get("text")
        if not isinstance(text, str) or not text.strip():
            raise bad_request("BUTTON_TEXT_INVALID")
        actions = [key for key in INLINE_ACTIONS if key in button]
        if not actions:
            raise bad_request(
                "can't parse inline keyboard button: Text buttons are unallowed in the "
                "inline keyboard"
            )
        if "callback_data" in button:
            data = button["callback_data"]
            if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64:
                raise bad_request("BUTTON_DATA_INVALID")
        if "url" in button:
            problem = button_url_problem(str(button["url"]))
            if problem is not None:
                raise bad_request(
                    f"inline keyboard button URL '{button['url']}' is invalid: {problem}"
                )

    def _reply_to(self, params: Params, chat: SimChat) -> SimMessage | None:
        reply = params.get_json("reply_parameters", "can't parse reply parameters JSON object")
        allow_missing = params.get_bool("allow_sending_without_reply")
        message_id: int | None
        if isinstance(reply, dict):
            message_id = reply.get("message_id")
            allow_missing = bool(reply.get("allow_sending_without_reply", allow_missing))
            if reply.get("chat_id") not in (None, chat.id):
                chat = self.sim.resolve_chat(reply["chat_id"])
        else:
            message_id = params.get_int("reply_to_message_id")
        if message_id is None:
            return None
        target = self.sim.find_message(chat.id, int(message_id))
        if target is None:
            if allow_missing:
                return None
            raise bad_request("message to be replied not found")
        return target

    def _check_rate(self, chat: SimChat, count: int = 1) -> None:
        retry = self.sim.limiter.check(chat.id, count)
        if retry is not None:
            raise ApiError(429, f"Too Many Requests: retry after {retry}", retry_after=retry)

    def _new_message(
        self,
        chat: SimChat,
        method: str,
        reply_to: SimMessage | None,
        markup: JSON | None,
        params: Params,
    ) -> SimMessage:
        message_id = chat.take_message_id()
        payload: JSON = {
            "message_id": message_id,
            "from": self.sim.bot_user(),
            "chat": chat.to_json(),
            "date": int(time.time()),
        }
        if reply_to is not None:
            payload["reply_to_message"] = _without_reply(reply_to.payload)
        if markup is not None and "inline_keyboard" in markup:
            # Only inline keyboards belong to the message; reply keyboards belong to the chat.
            payload["reply_markup"] = markup
        if params.get_bool("protect_content"):
            payload["has_protected_content"] = True
        return SimMessage(
            chat_id=chat.id,
            message_id=message_id,
            date=payload["date"],
            outgoing=True,
            method=method,
            payload=payload,
            reply_markup=markup,
            reply_to_message_id=reply_to.message_id if reply_to else None,
        )

    def _edit_target(self, params: Params) -> SimMessage:
        if params.get_str("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        chat = self._target(params)
        message_id = params.get_int("message_id", required=True)
        assert message_id is not None
        message = self.sim.find_message(chat.id, message_id)
        if message is None:
            raise bad_request("message to edit not found")
        if not message.outgoing:
            raise bad_request("message can't be edited")
        return message

    @staticmethod
    def _apply_edit(message: SimMessage, markup: JSON | None) -> None:
        payload = message.payload
        payload["edit_date"] = int(time.time())
        if markup is not None and "inline_keyboard" in markup:
            payload["reply_markup"] = markup
        else:
            # An edit without reply_markup removes the inline keyboard, as on Telegram.
            payload.pop("reply_markup", None)
        message.reply_markup = markup

    # ------------------------------------------------------------------ methods: bot & updates

    async def _accepted(self, params: Params) -> bool:
        return True

    async def getMe(self, params: Params) -> JSON:
        return self.sim.bot_user(full=True)

    async def getUpdates(self, params: Params) -> list[JSON]:
        sim = self.sim
        if sim.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )
        offset = params.get_int("offset", 0) or 0
        limit = max(1, min(100, params.get_int("limit", 100) or 100))
        timeout = max(0.0, params.get_float("timeout", 0.0) or 0.0)
        allowed = params.get_json("allowed_updates")
        if allowed is not None:
            sim.set_allowed_updates(allowed)
        sim.poll_generation += 1
        generation = sim.poll_generation
        sim.notify()  # wakes a poll already waiting so it can answer 409
        sim.confirm_updates(offset)
        deadline = time.monotonic() + timeout
        while True:
            if sim.poll_generation != generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only "
                    "one bot instance is running",
                )
            if sim.updates or sim.closing:
                return [dict(u) for u in sim.updates[:limit]]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            await sim.wait_changed(remaining)

    async def setWebhook(self, params: Params) -> WithDescription:
        sim = self.sim
        url = params.get_str("url") or ""
        if not url:
            had = sim.webhook is not None
            sim.webhook = None
            sim.notify()
            return WithDescription(
                True, "Webhook was deleted" if had else "Webhook is already deleted"
            )
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # The real server wants HTTPS on 443/80/88/8443; local sandboxes need plain HTTP.
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get_str("secret_token")
        if secret is not None and (
            not 1 <= len(secret) <= 256
            or not all(ch.isascii() and (ch.isalnum() or ch in "_-") for ch in secret)
        ):
            raise bad_request("secret token contains unallowed characters")
        allowed = params.get_json("allowed_updates")
        if allowed is not None:
            sim.set_allowed_updates(allowed)
        if params.get_bool("drop_pending_updates"):
            sim.updates.clear()
        same = sim.webhook is not None and sim.webhook.url == url
        config = WebhookConfig(
            url=url,
            secret_token=secret,
            max_connections=params.get_int("max_connections", 40) or 40,
            ip_address=params.get_str("ip_address"),
            allowed_updates=sim.allowed_updates,
        )
        if same and sim.webhook is not None:
            config.last_error_date = sim.webhook.last_error_date
            config.last_error_message = sim.webhook.last_error_message
        sim.webhook = config
        sim.ensure_webhook_worker()
        sim.notify()
        return WithDescription(True, "Webhook is already set" if same else "Webhook was set")

    async def deleteWebhook(self, params: Params) -> WithDescription:
        sim = self.sim
        had = sim.webhook is not None
        sim.webhook = None
        if params.get_bool("drop_pending_updates"):
            sim.updates.clear()
        sim.notify()
        return WithDescription(True, "Webhook was deleted" if had else "Webhook is already deleted")

    async def getWebhookInfo(self, params: Params) -> JSON:
        return self.sim.webhook_info()

    # ------------------------------------------------------------------ methods: messages

    async def sendMessage(self, params: Params) -> JSON:
        chat = self._target(params)
        text, entities, parse_mode, raw = self._text(params)
        markup = self._markup(params, None)
        reply_to = self._reply_to(params, chat)
        self._check_rate(chat)
        self._markup(params, chat)  # now that the send is accepted, apply keyboard changes
        message = self._new_message(chat, "sendMessage", reply_to, markup, params)
        message.payload["text"] = text
        if entities:
            message.payload["entities"] = entities
        preview = params.get_json("link_preview_options")
        if preview is None and params.get_bool("disable_web_page_preview"):
            preview = {"is_disabled": True}
        if isinstance(preview, dict):
            message.payload["link_preview_options"] = preview
            message.link_preview_options = preview
        message.text = text
        message.entities = entities
        message.raw_text = raw
        message.parse_mode = parse_mode
        self.sim.store_sent(message)
        return message.payload

    async def editMessageText(self, params: Params) -> JSON:
        message = self._edit_target(params)
        if message.text is None:
            raise bad_request("there is no text in the message to edit")
        text, entities, parse_mode, raw = self._text(params)
        markup = self._markup(params, None, inline_only=True)
        if (
            text == message.text
            and entities == message.entities
            and markup == (message.payload.get("reply_markup"))
        ):
            raise bad_request(NOT_MODIFIED)
        message.edits.append(message.snapshot())
        message.method = "editMessageText"
        message.text, message.entities = text, entities
        message.raw_text, message.parse_mode = raw, parse_mode
        message.payload["text"] = text
        if entities:
            message.payload["entities"] = entities
        else:
            message.payload.pop("entities", None)
        self._apply_edit(message, markup)
        self.sim.notify()
        return message.payload

    async def editMessageCaption(self, params: Params) -> JSON:
        message = self._edit_target(params)
        if message.media_kind is None:
            raise bad_request("there is no caption in the message to edit")
        caption, entities, parse_mode = self._caption(params)
        markup = self._markup(params, None, inline_only=True)
        if (
            caption == message.caption
            and entities == message.caption_entities
            and markup == (message.payload.get("reply_markup"))
        ):
            raise bad_request(NOT_MODIFIED)
        message.edits.append(message.snapshot())
        message.method = "editMessageCaption"
        message.caption, message.caption_entities = caption, entities
        message.parse_mode = parse_mode
        for key in ("caption", "caption_entities"):
            message.payload.pop(key, None)
        if caption:
            message.payload["caption"] = caption
        if entities:
            message.payload["caption_entities"] = entities
        self._apply_edit(message, markup)
        self.sim.notify()
        return message.payload

    async def editMessageReplyMarkup(self, params: Params) -> JSON:
        message = self._edit_target(params)
        markup = self._markup(params, None, inline_only=True)
        if markup == message.payload.get("reply_markup"):
            raise bad_request(NOT_MODIFIED)
        message.edits.append(message.snapshot())
        message.method = "editMessageReplyMarkup"
        self._apply_edit(message, markup)
        self.sim.notify()
        return message.payload

    async def deleteMessage(self, params: Params) -> bool:
        chat = self.sim.resolve_chat(params.chat_id())
        message_id = params.get_int("message_id", required=True)
        assert message_id is not None
        message = self.sim.find_message(chat.id, message_id)
        if message is None:
            raise bad_request("message to delete not found")
        message.deleted = True
        self.sim.notify()
        return True

    async def deleteMessages(self, params: Params) -> bool:
        chat = self.sim.resolve_chat(params.chat_id())
        ids = params.get_json("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise bad_request("message_ids must be a non-empty list of at most 100 items")
        for message_id in ids:
            message = self.sim.find_message(chat.id, int(message_id))
            if message is not None:
                message.deleted = True
        self.sim.notify()
        return True

    # ------------------------------------------------------------------ methods: media

    async def sendPhoto(self, params: Params) -> JSON:
        return await self._send_media(params, "photo", "sendPhoto")

    async def sendDocument(self, params: Params) -> JSON:
        return await self._send_media(params, "document", "sendDocument")

    async def sendAudio(self, params: Params) -> JSON:
        return await self._send_media(params, "audio", "sendAudio")

    async def sendVideo(self, params: Params) -> JSON:
        return await self._send_media(params, "video", "sendVideo")

    async def sendVoice(self, params: Params) -> JSON:
        return await self._send_media(params, "voice", "sendVoice")

    async def sendVideoNote(self, params: Params) -> JSON:
        return await self._send_media(params, "video_note", "sendVideoNote")

    async def sendAnimation(self, params: Params) -> JSON:
        return await self._send_media(params, "animation", "sendAnimation")

    async def sendSticker(self, params: Params) -> JSON:
        return await self._send_media(params, "sticker", "sendSticker")

    async def _send_media(self, params: Params, kind: str, method: str) -> JSON:
        chat = self._target(params)
        caption: str | None = None
        caption_entities: list[JSON] = []
        parse_mode: str | None = None
        if kind not in ("video_note", "sticker"):
            caption, caption_entities, parse_mode = self._caption(params)
        markup = self._markup(params, None)
        reply_to = self._reply_to(params, chat)
        files = await self._input_files(params, kind, kind, params.get_str(kind))
        self._check_rate(chat)
        self._markup(params, chat)
        message = self._new_message(chat, method, reply_to, markup, params)
        self._attach(message, kind, files, params.values, caption, caption_entities)
        message.parse_mode = parse_mode
        message.raw_text = params.get_str("caption")
        self.sim.store_sent(message)
        return message.payload

    def _attach(
        self,
        message: SimMessage,
        kind: str,
        files: list[StoredFile],
        extra: dict[str, Any],
        caption: str | None,
        caption_entities: list[JSON],
    ) -> None:
        message.media_kind = kind
        message.files = files
        message.payload[kind] = self.sim.media_json(kind, files, extra)
        if caption:
            message.caption = caption
            message.payload["caption"] = caption
            if caption_entities:
                message.caption_entities = caption_entities
                message.payload["caption_entities"] = caption_entities

    async def _input_files(
        self, params: Params, field: str, kind: str, value: str | None
    ) -> list[StoredFile]:
        """Resolve an InputFile (upload, attach://, file_id or URL) to stored file(s)."""
        upload = params.upload(field)
        if value and value.startswith("attach://"):
            upload = params.upload(value[len("attach://") :])
            if upload is None:
                raise bad_request("wrong file identifier/HTTP URL specified")
        if upload is not None:
            if not upload.data:
                raise bad_request("file must be non-empty")
            return self._store_new(kind, upload.data, upload.filename, upload.content_type)
        if not value:
            raise bad_request(f"there is no {field} in the request")
        if value.startswith(("http://", "https://")):
            data, filename, content_type = await self._download(value, kind)
            return self._store_new(kind, data, filename, content_type)
        stored = self.sim.files.get(value)
        if stored is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        if (stored.kind == "photo") != (kind == "photo"):
            raise bad_request("type of file mismatch")
        return list(self.sim.photo_sizes.get(stored.file_id, [stored]))

    def _store_new(
        self, kind: str, data: bytes, filename: str | None, content_type: str | None
    ) -> list[StoredFile]:
        sim = self.sim
        if kind == "photo":
            info = media.image_info(data)
            if info is None:
                raise bad_request("IMAGE_PROCESS_FAILED")
            _mime, width, height = info
            if width + height > 10000 or min(width, height) == 0:
                raise bad_request("PHOTO_INVALID_DIMENSIONS")
            if len(data) > 10 * 1024 * 1024:
                raise bad_request("file is too big")
            return sim.store_photo(data, width, height)
        if len(data) > 50 * 1024 * 1024:
            raise ApiError(413, "Request Entity Too Large")
        mime = content_type if content_type and content_type != "application/octet-stream" else None
        if mime is None and filename:
            mime = mimetypes.guess_type(filename)[0]
        if mime is None and kind in media.PLACEHOLDERS:
            # Telegram re-detects the type; voice is always OGG/Opus, video MP4, etc.
            mime = media.PLACEHOLDERS[kind][1] if kind != "document" else "application/octet-stream"
        if kind == "document" and not filename:
            filename = "file"
        return [sim.store_file(kind, data, mime_type=mime, file_name=filename)]

    async def _download(self, url: str, kind: str) -> tuple[bytes, str | None, str | None]:
        """Fetch a file the bot passed by URL, as Telegram's servers would."""
        sim = self.sim
        sim.stats["url_fetches"] += 1
        timeout = aiohttp.ClientTimeout(total=sim.url_fetch_timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(url) as response,
            ):
                if response.status != 200:
                    raise bad_request("wrong file identifier/HTTP URL specified")
                content_type = response.content_type
                data = await response.content.read(MAX_DOWNLOAD_SIZE + 1)
        except ApiError:
            raise
        except (TimeoutError, aiohttp.ClientError, ValueError):
            raise bad_request("failed to get HTTP URL content") from None
        if len(data) > MAX_DOWNLOAD_SIZE or not data:
            raise bad_request("failed to get HTTP URL content")
        if kind == "photo" and not content_type.startswith("image/"):
            raise bad_request("wrong type of the web page content")
        if kind == "document" and content_type not in DOCUMENT_URL_TYPES:
            raise bad_request("wrong type of the web page content")
        name = unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or None
        return data, name, content_type

    async def sendMediaGroup(self, params: Params) -> list[JSON]:
        chat = self._target(params)
        items = params.get_json("media", "can't parse media JSON object")
        if not isinstance(items, list):
            raise bad_request("can't parse media JSON object")
        if not 2 <= len(items) <= 10:
            raise bad_request("media group must contain 2-10 items")
        kinds = set()
        for item in items:
            if not isinstance(item, dict) or item.get("type") not in (
                "photo",
                "video",
                "document",
                "audio",
            ):
                raise bad_request("can't parse InputMedia JSON object")
            kinds.add(item["type"])
        if len(kinds) > 1 and not kinds <= {"photo", "video"}:
            raise bad_request("documents and audio can't be mixed with other media types")
        reply_to = self._reply_to(params, chat)
        prepared: list[tuple[dict[str, Any], list[StoredFile], str | None, list[JSON]]] = []
        for item in items:
            sub = Params(
                {
                    k: v
                    for k, v in item.items()
                    if k in ("caption", "parse_mode", "caption_entities")
                },
                {},
            )
            caption, entities, _mode = self._caption(sub)
            files = await self._input_files(
                params, "media", item["type"], str(item.get("media") or "")
            )
            prepared.append((item, files, caption, entities))
        self._check_rate(chat, len(items))
        group_id = str(secrets.randbelow(9 * 10**17) + 10**17)
        result: list[JSON] = []
        for item, files, caption, entities in prepared:
            message = self._new_message(chat, "sendMediaGroup", reply_to, None, params)
            message.media_group_id = group_id
            message.payload["media_group_id"] = group_id
            self._attach(message, item["type"], files, item, caption, entities)
            message.parse_mode = item.get("parse_mode")
            self.sim.store_sent(message)
            result.append(message.payload)
        return result

    async def sendChatAction(self, params: Params) -> bool:
        chat = self._target(params)
        action = params.get_str("action") or ""
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self.sim.record_chat_action(chat.id, action)
        return True

    async def answerCallbackQuery(self, params: Params) -> bool:
        query_id = params.get_str("callback_query_id") or ""
        text = params.get_str("text")
        if text is not None and len(text) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        self.sim.answer_callback(
            query_id,
            {
                "callback_query_id": query_id,
                "text": text,
                "show_alert": params.get_bool("show_alert"),
                "url": params.get_str("url"),
                "cache_time": params.get_int("cache_time", 0),
            },
        )
        return True

    # ------------------------------------------------------------------ methods: files & misc

    async def getFile(self, params: Params) -> JSON:
        file_id = params.get_str("file_id") or ""
        stored = self.sim.files.get(file_id)
        if stored is None:
            raise bad_request("invalid file_id")
        if stored.file_size > MAX_DOWNLOAD_SIZE:
            raise bad_request("file is too big")
        data = stored.base_json()
        data["file_path"] = stored.file_path
        return data

    @staticmethod
    def _commands_key(params: Params) -> tuple[str, str]:
        scope = params.get_json("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), params.get_str("language_code") or ""

    async def setMyCommands(self, params: Params) -> bool:
        commands = params.get_json("commands", "can't parse commands JSON object")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("can't parse commands JSON object")
        clean: list[JSON] = []
        for item in commands:
            if not isinstance(item, dict):
                raise bad_request("can't parse BotCommand JSON object")
            command = str(item.get("command", ""))
            description = str(item.get("description", ""))
            if not 1 <= len(command) <= 32 or not all(
                ch.isascii() and (ch.islower() or ch.isdigit() or ch == "_") for ch in command
            ):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise bad_request("command description must be non-empty")
            clean.append({"command": command, "description": description})
        self.sim.commands[self._commands_key(params)] = clean
        return True

    async def getMyCommands(self, params: Params) -> list[JSON]:
        return list(self.sim.commands.get(self._commands_key(params), []))

    async def deleteMyCommands(self, params: Params) -> bool:
        self.sim.commands.pop(self._commands_key(params), None)
        return True

    async def getChat(self, params: Params) -> JSON:
        chat = self.sim.resolve_chat(params.chat_id())
        data = chat.to_json()
        # Fields PTB's ChatFullInfo requires.
        data.update(
            {
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": False,
                    "limited_gifts": False,
                    "unique_gifts": False,
                    "premium_subscription": False,
                    "gifts_from_channels": False,
                },
            }
        )
        return data


def _without_reply(payload: JSON) -> JSON:
    # A reply_to_message never nests another reply_to_message.
    return {k: v for k, v in payload.items() if k != "reply_to_message"}
