"""What both pages share: HTML templates (``string.Template``, values escaped) and the
static directory (plain CSS and JS, no build step)."""

from __future__ import annotations

import html
from pathlib import Path
from string import Template

from aiohttp import web

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
STATIC_PREFIX = "/sandbox/static"


def render(name: str, **values: object) -> web.Response:
    template = Template((TEMPLATES / name).read_text(encoding="utf-8"))
    page = template.substitute({k: html.escape(str(v)) for k, v in values.items()})
    return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-store"})


def add_static(app: web.Application) -> None:
    app.router.add_static(STATIC_PREFIX, STATIC, name="sandbox-static")
