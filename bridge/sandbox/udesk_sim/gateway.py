"""The /open_api_v1 sub-application: every request is authenticated, counted against the
quota, exposed to injected faults and recorded before and after its handler runs."""

from __future__ import annotations

import json
import logging
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bridge.udesk.errors import (
    CODE_OK,
    CODE_PREVIEW_SESSION_GONE,
    CODE_QUEUED,
    CODE_QUOTA_EXCEEDED,
    CODE_SESSION_GONE,
)

from .api_customers import CustomersApi
from .api_im import ImApi
from .api_tickets import TicketsApi
from .auth import AUTH_PARAMS, TIMESTAMP_EXPIRED
from .faults import Fault, http_status_of, udesk_code_of
from .params import BODY_KEY, Answer, InvalidJson, read_body
from .shapes import MSG_QUOTA, MSG_SESSION_GONE, udesk
from .state import RecordedCall

if TYPE_CHECKING:
    from .simulator import UdeskSimulator

API_PREFIX = "/open_api_v1"
Handler = Any  # aiohttp's handler type is private

log = logging.getLogger(__name__)


def build_open_api(sim: UdeskSimulator) -> web.Application:
    app = web.Application(middlewares=[_gateway(sim)])
    for api in (CustomersApi(sim), ImApi(sim), TicketsApi(sim)):
        app.add_routes(api.routes())
    # Last, so an unknown path (or method) is still authenticated and recorded: a bridge
    # calling a path Udesk does not have shows up in sim.calls.
    app.router.add_route("*", "/{tail:.*}", _not_found)
    return app


async def _not_found(request: web.Request) -> web.Response:
    return web.json_response({"code": 404, "message": "Not Found"}, status=404)


def _gateway(sim: UdeskSimulator) -> Any:
    @web.middleware
    async def gateway(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.monotonic()
        path = request.path[len(API_PREFIX) :] or "/"
        # On arrival: ``calls`` records a call once answered, which a hanging one never is.
        sim.arrived.append((request.method, path))
        request[BODY_KEY] = await read_body(request)
        fault: Fault | None = None
        error = sim.gate.check(request.query, sim.email, sim.api_token)
        if error is not None:
            response: web.Response = web.json_response(error)
        elif sim.gate.over_quota(sim.quota_per_minute, sim.clock()):
            response = udesk(CODE_QUOTA_EXCEEDED, MSG_QUOTA)
        else:
            fault = sim.faults.take(request.method, path)
            if fault is None:
                response = await _handle(sim, request, handler)
            else:
                response = await _faulty(sim, fault, request, handler, path)
        sim.calls.append(
            RecordedCall(
                method=request.method,
                path=path,
                query={k: v for k, v in request.query.items() if k not in AUTH_PARAMS},
                body=_loggable(request[BODY_KEY]),
                code=_code_of(response),
                http_status=response.status,
                time=sim.clock(),
                duration=time.monotonic() - started,
                fault=fault.kind if fault else None,
            )
        )
        return response

    return gateway


async def _handle(sim: UdeskSimulator, request: web.Request, handler: Handler) -> web.Response:
    try:
        response: web.Response = await handler(request)
    except Answer as answer:
        response = answer.response
    except web.HTTPException:
        raise
    except Exception as exc:
        # A simulator bug must not look like a Udesk answer: 500, and kept for tests.
        log.exception("udesk simulator handler failed: %s %s", request.method, request.path)
        sim.errors.append(f"{request.method} {request.path}: {exc!r}")
        response = web.json_response(
            {"code": 500, "message": f"simulator error: {exc!r}"}, status=500
        )
    return response


async def _faulty(
    sim: UdeskSimulator, fault: Fault, request: web.Request, handler: Handler, path: str
) -> web.Response:
    status = http_status_of(fault.kind)
    if status is not None:
        return proxy_page(status)
    code = udesk_code_of(fault.kind)
    if code is not None:
        return udesk(code, f"simulated answer {code}")
    if fault.kind == "clock_skew":
        return web.json_response(TIMESTAMP_EXPIRED)
    if fault.kind == "quota":
        return udesk(CODE_QUOTA_EXCEEDED, MSG_QUOTA)
    if fault.kind == "session_gone":
        if path.endswith("/message_preview"):
            return udesk(CODE_PREVIEW_SESSION_GONE, "Session not found or closed.")
        return udesk(CODE_SESSION_GONE, MSG_SESSION_GONE)
    if fault.kind == "assigning":
        if path == "/im/queue_status":
            return udesk(CODE_OK, status="Assigning", count=0)
        return udesk(
            CODE_QUEUED,
            "Customer service assignment in progress!",
            assign_type="agent",
            assign_info={"count": 0},
        )
    if fault.kind == "latency":
        await sim.sleep(fault.delay)
        return await _handle(sim, request, handler)
    # timeout: the work is done, only the answer is late (the client has given up by then).
    response = await _handle(sim, request, handler)
    await sim.sleep(fault.delay)
    return response


def proxy_page(status: int) -> web.Response:
    """The HTML error page nginx (in front of Udesk, or a corporate proxy) answers with."""
    try:
        title = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:  # a status with no standard name (e.g. nginx's 499)
        title = f"{status} Error"
    page = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )
    return web.Response(status=status, text=page, content_type="text/html")


def _code_of(response: web.Response) -> int | None:
    if response.content_type != "application/json" or not isinstance(response.body, bytes):
        return None
    try:
        code = json.loads(response.body).get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, int) else None


def _loggable(body: Any) -> Any:
    if isinstance(body, bytes):
        return {"bytes": len(body)}
    if isinstance(body, InvalidJson):
        return {"invalid_json": True}
    return body
