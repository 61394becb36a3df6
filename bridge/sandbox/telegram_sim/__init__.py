"""A Telegram Bot API simulator: an aiohttp app that python-telegram-bot (or the bridge)
talks to over real HTTP as if it were api.telegram.org, so tests and the local sandbox run
without a Telegram account.

Start it::

    from bridge.sandbox.telegram_sim import TelegramSimulator

    sim = TelegramSimulator(bot_token="123456:TEST-token", bot_username="udesk_test_bot")
    root = await sim.start()          # or serve sim.app yourself (AppRunner/TestServer)
    bot = telegram.Bot(token, base_url=f"{root}/bot", base_file_url=f"{root}/file/bot")
    # the bridge: TELEGRAM_API_URL=root (it appends /bot{token}/... itself)
    ...
    await sim.stop()                  # or: async with TelegramSimulator() as sim: ...

``sim.app`` serves ``/bot{token}/{method}`` (GET or POST; query string, JSON, urlencoded or
multipart), ``/file/bot{token}/{file_path}`` and the control API under ``/_sim/``. A wrong
token answers 401 "Unauthorized", an unknown method 404 "Not Found"; every answer has
Telegram's shape (``{"ok": true, "result": ...}`` / ``{"ok": false, "error_code",
"description", "parameters": {"retry_after"}}``).

Bot API methods: getMe, getUpdates (offset confirmation, negative offsets, limit, long-poll
timeout, allowed_updates, 409 when another getUpdates supersedes a waiting one or while a
webhook is set), setWebhook / deleteWebhook / getWebhookInfo (the sim POSTs updates in order
with X-Telegram-Bot-Api-Secret-Token, retrying with a short backoff until 2xx, and reports
last_error_date/last_error_message; plain http URLs are allowed), sendMessage (parse_mode
HTML / MarkdownV2 / Markdown with Telegram's parser and error messages, or entities; inline
and reply keyboards, ForceReply, ReplyKeyboardRemove, link_preview_options,
reply_parameters), editMessageText / editMessageCaption / editMessageReplyMarkup (an edit
without reply_markup drops the inline keyboard; "message is not modified"), deleteMessage(s),
sendPhoto / sendDocument / sendAudio / sendVideo / sendVoice / sendVideoNote / sendAnimation /
sendSticker (multipart upload, attach://, file_id, or an http(s) URL the sim downloads
itself), sendMediaGroup, sendChatAction, answerCallbackQuery, getFile (400 "file is too big"
over 20 MB), set/get/deleteMyCommands, getChat, and a few setters that just answer true.
Texts are limited to 4096 and captions to 1024 UTF-16 code units after parsing; every
stored message keeps the plain text plus the entities Telegram would produce. Sending to a
user who never wrote to the bot answers 400 "chat not found" (inject something or call
``add_user`` first).

Python control API (HTTP equivalents under /_sim/ in brackets):

- ``add_user(user_id, first_name=None, last_name=None, username=None, language_code="en",
  is_premium=None) -> SimUser``  [POST /_sim/users {"id", ...}]. Private chat id == user id.
  ``add_group(chat_id, title, type="group")`` for group chats (negative ids).
- Injections return ``Injected`` (``.update``, ``.update_id``, ``.message``, ``.message_id``,
  ``.callback_query``, ``.queued``) [POST /_sim/inject/{kind} with the keyword arguments as
  a JSON object, ``"user"`` as an id or user object, bytes as ``data_base64``]. ``user`` is an
  id, a mapping with ``id`` (creates/updates the user) or a SimUser. ``chat_id`` (optional)
  targets a group instead of the private chat.

  - ``inject_text(user, text, *, entities=None, reply_to=None, chat_id=None)``  [text]
  - ``inject_command(user, command, payload=None, *, chat_id=None)``  [command] "/start x"
  - ``inject_photo(user, data=None, *, caption=None, caption_entities=None, file_size=None,
    width=1280, height=960, media_group_id=None, chat_id=None)``  [photo]; the photo array
    holds generated smaller JPEG sizes and the given (or generated) image last.
  - ``inject_document(user, data=None, *, file_name, mime_type, caption, file_size, ...)``
  - ``inject_voice / inject_audio / inject_video / inject_video_note / inject_sticker``
  - ``inject_location(user, latitude, longitude)``, ``inject_contact(user, phone_number, *,
    first_name=None, last_name=None, contact_user_id=None, own=True)`` (own: the
    request_contact button, so user_id defaults to the sender)
  - ``inject_album(user, items) -> list[Injected]``  [album] items: ``{"type": "photo" |
    "video" | "document" | "audio", "data", "caption", ...}`` sharing one media_group_id
  - ``inject_edit(user, message_id, *, text=None, caption=None, entities=None)``  [edit]
  - ``inject_callback(user, message_id, data=None, *, button_text=None)``  [callback] a
    press on an inline button of bot message ``message_id`` (by data or by button text)
  - ``inject_update(update_dict)``  [update] any hand-made update
  - ``block(user)`` / ``unblock(user)`` -> my_chat_member update; while blocked every send
    answers 403 "Forbidden: bot was blocked by the user". ``deactivate(user)`` -> 403
    "Forbidden: user is deactivated"  [POST /_sim/users/{id}/block|unblock|deactivate]
  - ``set_file_size(file_id, size)`` e.g. 21 MB -> getFile 400 "file is too big"
    [POST /_sim/files/{file_id}/size {"file_size"}]
- Reading what the bot did:

  - ``sent(chat_id=None) -> list[SimMessage]`` bot messages, oldest first
    [GET /_sim/chats/{id}/messages; ?all=1 adds the user's]. SimMessage has ``method, text,
    entities, raw_text, parse_mode, caption, caption_entities, media_kind, files`` (StoredFile
    with ``.data`` bytes, ``.file_id``, ``.mime_type``, ``.file_name``), ``media`` (the
    largest of them) and ``data`` (its bytes), ``reply_markup, reply_to_message_id,
    link_preview_options, media_group_id, edits`` (earlier versions), ``deleted``,
    ``payload`` (the Message JSON).
  - ``history(chat_id)`` both sides  [GET /_sim/chats/{id}/history?version=V&timeout=S
    long-polls until something changes after version V; answers {version, messages,
    keyboard}]
  - ``await wait_for_sent(chat_id, count=1, timeout=5.0)``, ``await wait_for(predicate,
    timeout)``
  - ``chat_actions(chat_id=None)`` [GET /_sim/chats/{id}/actions], ``keyboard(chat_id)``
    the reply keyboard shown [GET /_sim/chats/{id}/keyboard], ``callback_answers`` (list)
    [GET /_sim/callback_answers], ``file(file_id)`` / ``file_bytes(file_id)``
    [GET /_sim/files/{file_id} returns the bytes], ``pending_updates()``
    [GET /_sim/updates], ``webhook_info()`` [GET /_sim/webhook, with delivery attempts],
    ``calls(method=None)`` request log [GET /_sim/requests?method=...], ``summary()``
    [GET /_sim/].
- Limits (off by default): ``enforce_limits(True, *, per_chat_interval=1.0,
  global_per_second=30, group_per_minute=20)`` [POST /_sim/limits {"enabled": true, ...}]:
  a second message to a chat within 1 s, the 31st message in any sliding second, or the 21st
  in a group within a minute answers 429 "Too Many Requests: retry after N" with
  parameters.retry_after. ``stats`` is a Counter (``stats["429"]``, ``["sent"]``,
  ``["requests"]``, ``["method.sendMessage"]``, ...); ``sent_per_second(chat_id=None)``,
  ``max_sent_per_second(chat_id=None)`` [GET /_sim/stats].
- Faults: ``inject_fault(method=None, kind="http_500", count=1, delay=0.0,
  retry_after=None, location=None)`` [POST /_sim/faults]; kinds http_500, http_502 (HTML
  body as from nginx), drop_connection (socket closed without an answer), retry_after
  (429), latency (answer after ``delay`` s), truncate_download (file download cut halfway),
  redirect (302 to ``location``, as a proxy or captive portal would, with the requested
  URL percent-encoded as ``return_to``). ``method`` None matches every request, "file"
  matches downloads, count None = until cleared.
  ``clear_faults()`` [DELETE /_sim/faults].
- ``reset()`` [POST /_sim/reset] forgets everything but the bot's identity.
"""

from .simulator import RequestRecord, TelegramSimulator
from .state import ApiError, Fault, Injected, SimChat, SimError, SimMessage, SimUser, StoredFile

__all__ = [
    "ApiError",
    "Fault",
    "Injected",
    "RequestRecord",
    "SimChat",
    "SimError",
    "SimMessage",
    "SimUser",
    "StoredFile",
    "TelegramSimulator",
]
