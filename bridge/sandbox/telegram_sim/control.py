"""The HTTP control API under ``/_sim/``: the Python control methods, as JSON over HTTP.

It exists for things that cannot call Python in-process: the sandbox's customer chat page,
shell scripts, tests in another process. Request bodies are JSON objects whose keys are the
keyword arguments of the matching Python method; file bytes travel base64-encoded in
``data_base64``; a user is given as ``"user": 42`` or ``"user": {"id": 42, "first_name": ...}``.
Misuse answers 400 ``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .state import JSON, Injected, SimError

if TYPE_CHECKING:
    from .simulator import TelegramSimulator

Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _ok(data: Any) -> web.Response:
    return web.json_response(
        {"ok": True, "result": data}, dumps=lambda o: json.dumps(o, ensure_ascii=False)
    )


def _fail(message: str, status: int = 400) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


def _guard(handler: Route) -> Route:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except SimError as exc:
            return _fail(str(exc))
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            return _fail(f"bad request: {exc!r}")

    return wrapped


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError as exc:
        raise SimError("body must be a JSON object") from exc
    if not isinstance(body, dict):
        raise SimError("body must be a JSON object")
    data = body.pop("data_base64", None)
    if data is not None:
        body["data"] = base64.b64decode(data)
    return body


def _injected(result: Injected | list[Injected]) -> web.Response:
    if isinstance(result, list):
        return _ok([r.to_json() for r in result])
    return _ok(result.to_json())


# The kinds POST /_sim/inject/{kind} accepts, mapped to the simulator's method names.
INJECT_KINDS = {
    "text": "inject_text",
    "command": "inject_command",
    "photo": "inject_photo",
    "document": "inject_document",
    "voice": "inject_voice",
    "audio": "inject_audio",
    "video": "inject_video",
    "video_note": "inject_video_note",
    "sticker": "inject_sticker",
    "location": "inject_location",
    "contact": "inject_contact",
    "album": "inject_album",
    "edit": "inject_edit",
    "callback": "inject_callback",
}


def add_control_routes(app: web.Application, sim: TelegramSimulator) -> None:
    async def index(request: web.Request) -> web.StreamResponse:
        return _ok(sim.summary())

    async def reset(request: web.Request) -> web.StreamResponse:
        sim.reset()
        return _ok(True)

    async def add_user(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        user_id = int(body.pop("id"))
        return _ok(sim.add_user(user_id, **body).to_json())

    async def user_action(request: web.Request) -> web.StreamResponse:
        user_id = int(request.match_info["user_id"])
        action = request.match_info["action"]
        if action == "block":
            return _injected(sim.block(user_id))
        if action == "unblock":
            return _injected(sim.unblock(user_id))
        if action == "deactivate":
            sim.deactivate(user_id)
            return _ok(True)
        return _fail(f"unknown user action {action!r}", 404)

    async def inject(request: web.Request) -> web.StreamResponse:
        kind = request.match_info["kind"]
        if kind == "update":
            return _injected(sim.inject_update(await _body(request)))
        name = INJECT_KINDS.get(kind)
        if name is None:
            return _fail(f"unknown inject kind {kind!r}; one of {sorted(INJECT_KINDS)}", 404)
        body = await _body(request)
        user = body.pop("user", None)
        if user is None:
            raise SimError("'user' (an id or a user object) is required")
        if kind == "album":
            for item in body.get("items", []):
                if "data_base64" in item:
                    item["data"] = base64.b64decode(item.pop("data_base64"))
        return _injected(getattr(sim, name)(user, **body))

    def messages_json(messages: list[Any]) -> list[JSON]:
        return [m.to_json() for m in messages]

    async def chat_messages(request: web.Request) -> web.StreamResponse:
        chat_id = int(request.match_info["chat_id"])
        if request.query.get("all") in ("1", "true"):
            return _ok(messages_json(sim.history(chat_id)))
        return _ok(messages_json(sim.sent(chat_id)))

    async def chat_history(request: web.Request) -> web.StreamResponse:
        # Both sides of the chat plus the sim's change counter. With ?version=V&timeout=S
        # it long-polls until anything changes after version V (for the sandbox chat page).
        chat_id = int(request.match_info["chat_id"])
        seen = request.query.get("version")
        if seen is not None:
            deadline = time.monotonic() + min(float(request.query.get("timeout", "25")), 60.0)
            while sim.version == int(seen) and not sim.closing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                await sim.wait_changed(remaining)
        history = [m.to_json() for m in sim.history(chat_id)]
        return _ok({"version": sim.version, "messages": history, "keyboard": sim.keyboard(chat_id)})

    async def chat_actions(request: web.Request) -> web.StreamResponse:
        return _ok(sim.chat_actions(int(request.match_info["chat_id"])))

    async def chat_keyboard(request: web.Request) -> web.StreamResponse:
        return _ok(sim.keyboard(int(request.match_info["chat_id"])))

    async def callback_answers(request: web.Request) -> web.StreamResponse:
        return _ok(sim.callback_answers)

    async def get_file(request: web.Request) -> web.StreamResponse:
        stored = sim.file(request.match_info["file_id"])
        headers = {}
        if stored.file_name:
            headers["Content-Disposition"] = f'inline; filename="{stored.file_name}"'
        return web.Response(
            body=stored.data,
            content_type=stored.content_type,
            headers=headers,
        )

    async def file_size(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        stored = sim.set_file_size(request.match_info["file_id"], int(body["file_size"]))
        return _ok(stored.describe())

    async def updates(request: web.Request) -> web.StreamResponse:
        return _ok(sim.pending_updates())

    async def webhook(request: web.Request) -> web.StreamResponse:
        info = sim.webhook_info()
        info["deliveries"] = sim.webhook.deliveries if sim.webhook else []
        return _ok(info)

    async def limits(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        sim.enforce_limits(bool(body.pop("enabled", True)), **body)
        return _ok({"enabled": sim.limiter.enabled})

    async def stats(request: web.Request) -> web.StreamResponse:
        chat = request.query.get("chat_id")
        chat_id = int(chat) if chat else None
        return _ok(
            {
                "counters": dict(sim.stats),
                "sent_per_second": {
                    str(k): v for k, v in sorted(sim.sent_per_second(chat_id).items())
                },
                "max_sent_per_second": sim.max_sent_per_second(chat_id),
            }
        )

    async def add_fault(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        return _ok(sim.inject_fault(**body).to_json())

    async def list_faults(request: web.Request) -> web.StreamResponse:
        return _ok([f.to_json() for f in sim.faults])

    async def clear_faults(request: web.Request) -> web.StreamResponse:
        sim.clear_faults()
        return _ok(True)

    async def requests_log(request: web.Request) -> web.StreamResponse:
        method = request.query.get("method")
        return _ok([r.to_json() for r in sim.calls(method)])

    routes: list[tuple[str, str, Route]] = [
        ("GET", "/_sim/", index),
        ("GET", "/_sim", index),
        ("POST", "/_sim/reset", reset),
        ("POST", "/_sim/users", add_user),
        ("POST", "/_sim/users/{user_id}/{action}", user_action),
        ("POST", "/_sim/inject/{kind}", inject),
        ("GET", "/_sim/chats/{chat_id}/messages", chat_messages),
        ("GET", "/_sim/chats/{chat_id}/history", chat_history),
        ("GET", "/_sim/chats/{chat_id}/actions", chat_actions),
        ("GET", "/_sim/chats/{chat_id}/keyboard", chat_keyboard),
        ("GET", "/_sim/callback_answers", callback_answers),
        ("GET", "/_sim/files/{file_id}", get_file),
        ("POST", "/_sim/files/{file_id}/size", file_size),
        ("GET", "/_sim/updates", updates),
        ("GET", "/_sim/webhook", webhook),
        ("POST", "/_sim/limits", limits),
        ("GET", "/_sim/stats", stats),
        ("POST", "/_sim/faults", add_fault),
        ("GET", "/_sim/faults", list_faults),
        ("DELETE", "/_sim/faults", clear_faults),
        ("GET", "/_sim/requests", requests_log),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, _guard(handler))
