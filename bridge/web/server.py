"""The aiohttp application every endpoint hangs on."""

from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.web import health, metrics_route
from bridge.web.errors import RefusedRequests, error_middleware
from bridge.web.keys import ENGINE, READINESS_CHECKS

# Udesk pushes are capped at 1 MiB by the contract; Telegram updates and admin calls are far
# smaller.  The few routes that take bigger bodies check their own limit.
MAX_BODY = 1024 * 1024

#: The logger aiohttp's connection handling writes to (``web.AppRunner(logger=...)``), in
#: place of its own ``aiohttp.server``: requests its parser refuses are a WARNING line here.
HTTP_LOG = logging.getLogger("bridge.web.http")
HTTP_LOG.addFilter(RefusedRequests())


def create_web_app(engine: AsyncEngine) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY)
    app[ENGINE] = engine
    app[READINESS_CHECKS] = {}
    health.add_routes(app)
    metrics_route.add_routes(app)  # GET /metrics
    return app
