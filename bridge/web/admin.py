"""``/admin/*``: the operators' JSON API, behind ``Authorization: Bearer ADMIN_TOKEN``.

Without ADMIN_TOKEN none of these routes exist (the tree answers 404).  With it, every path
under /admin, known or not, first checks the token (constant-time), so probing learns
nothing without it.  Errors use the one shape ``{"error": code, "detail": text}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from bridge.admin.operations import STATES, AdminError, AdminOps
from bridge.core.routing import Router
from bridge.http_errors import error_response
from bridge.untrusted import BadJson, load_json, secret_matches

MAX_LIMIT = 1000


@dataclass
class AdminApi:
    token: str
    ops: AdminOps
    router: Router
    reload: Callable[[], list[str]]  # reloads the routing file; returns the problems

    def add_routes(self, app: web.Application) -> None:
        get, post = app.router.add_get, app.router.add_post
        get("/admin/sessions", self._guard(self.sessions))
        get("/admin/queue", self._guard(self.queue))
        get(r"/admin/customers/{telegram_user_id:-?\d{1,18}}/messages", self._guard(self.messages))
        post(r"/admin/sessions/{id:\d{1,18}}/close", self._guard(self.close))
        post(r"/admin/messages/{direction}/{id:\d{1,18}}/retry", self._guard(self.retry))
        post(r"/admin/messages/{direction}/{id:\d{1,18}}/discard", self._guard(self.discard))
        get("/admin/routing", self._guard(self.routing))
        # privacy: the right of access and erasure (bridge/privacy)
        person = r"/admin/customers/{telegram_user_id:-?\d{1,18}}"
        get(f"{person}/export", self._guard(self.export_customer))
        post(f"{person}/erase", self._guard(self.erase_customer))
        post("/admin/routing/reload", self._guard(self.reload_routing))
        app.router.add_route("*", "/admin{tail:(/.*)?}", self._guard(self.unknown))

    # --- authentication ------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> str | None:
        """None when the bearer token is right, else the reason."""
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if not header:
            return "missing"
        if scheme.lower() != "bearer" or not given.strip():
            return "invalid"
        # Any bytes may come in the header (secret_matches never raises on them).
        if not secret_matches(given.strip(), self.token):
            return "invalid"
        return None

    def _guard(self, handler: web.Handler) -> web.Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            problem = self._authorized(request)
            if problem is not None:
                response = error_response(
                    401,
                    "unauthorized",
                    "send Authorization: Bearer ADMIN_TOKEN"
                    if problem == "missing"
                    else "wrong admin token",
                )
                challenge = 'Bearer realm="udesk-bridge admin"'
                if problem == "invalid":
                    challenge += ', error="invalid_token"'
                response.headers["WWW-Authenticate"] = challenge
                return response
            try:
                return await handler(request)
            except AdminError as exc:
                return error_response(exc.status, exc.code, exc.detail)

        return guarded

    # --- handlers ------------------------------------------------------------------------

    @staticmethod
    def _limit(request: web.Request, default: int) -> int:
        raw = request.query.get("limit", str(default))
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            raise AdminError(400, "bad_request", f"limit is a number from 1 to {MAX_LIMIT}")
        return int(raw)

    async def sessions(self, request: web.Request) -> web.Response:
        state = request.query.get("state") or None
        if state is not None and state not in STATES:
            raise AdminError(400, "bad_request", f"state is one of {', '.join(STATES)}")
        rows = await self.ops.list_sessions(state, self._limit(request, 100))
        return web.json_response({"sessions": rows, "count": len(rows)})

    async def queue(self, _request: web.Request) -> web.Response:
        rows = await self.ops.queue()
        return web.json_response({"sessions": rows, "count": len(rows)})

    async def messages(self, request: web.Request) -> web.Response:
        user = int(request.match_info["telegram_user_id"])
        answer = await self.ops.customer_messages(user, self._limit(request, 50))
        return web.json_response(answer)

    async def close(self, request: web.Request) -> web.Response:
        session = await self.ops.close_session(int(request.match_info["id"]))
        return web.json_response({"session": session})

    async def retry(self, request: web.Request) -> web.Response:
        m = request.match_info
        record = await self.ops.retry(m["direction"], int(m["id"]))
        return web.json_response({"message": record})

    async def discard(self, request: web.Request) -> web.Response:
        m = request.match_info
        record = await self.ops.discard(m["direction"], int(m["id"]))
        return web.json_response({"message": record})

    async def routing(self, _request: web.Request) -> web.Response:
        return web.json_response(self.router.config.describe())

    async def reload_routing(self, _request: web.Request) -> web.Response:
        if self.router.source is None:
            raise AdminError(
                409, "no_routing_file", "ROUTING_FILE is not set: there is nothing to reload"
            )
        problems = self.reload()
        if problems:
            detail = "the file was refused and the rules in force stay:\n" + "\n".join(problems)
            raise AdminError(422, "routing_file_invalid", detail)
        return web.json_response({"status": "reloaded", "routing": self.router.config.describe()})

    async def export_customer(self, request: web.Request) -> web.Response:
        user = int(request.match_info["telegram_user_id"])
        return web.json_response(await self.ops.export_customer(user))

    async def erase_customer(self, request: web.Request) -> web.Response:
        user = int(request.match_info["telegram_user_id"])
        raw = await request.read()
        try:
            body = load_json(raw) if raw.strip() else {}
        except BadJson:
            raise AdminError(400, "bad_request", 'the body is JSON: {"dry_run": true}') from None
        dry_run = body.get("dry_run", False) if isinstance(body, dict) else None
        if not isinstance(dry_run, bool):
            raise AdminError(400, "bad_request", 'the body is {"dry_run": true|false}')
        report = await self.ops.erase_customer(user, dry_run=dry_run)
        return web.json_response(report)

    async def unknown(self, request: web.Request) -> web.Response:
        raise AdminError(404, "not_found", f"no admin endpoint {request.method} {request.path}")
