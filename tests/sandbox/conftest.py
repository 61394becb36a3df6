"""The sandbox launcher in-process on free ports with SQLite, and a real headless Chromium.

Browser tests need Debian's chromium at /usr/bin/chromium (``make test`` installs it on CI)
and the ``playwright`` package (the dev extra) as its driver; Playwright's own browser
downloads are never used.  Without chromium the browser tests skip and say why.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bridge.sandbox.run import Sandbox, SandboxOptions
from tests.waiting import eventually  # noqa: F401  (used by the sandbox tests)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

T = TypeVar("T")


def sandbox_options(data_dir: Path, **extra: Any) -> SandboxOptions:
    # env={}: a DATABASE_URL in the developer's shell must not move the tests off SQLite.
    values: dict[str, Any] = {
        "udesk_port": 0,
        "telegram_port": 0,
        "bridge_port": 0,
        "data_dir": data_dir,
        "env": {},
        "queue_poll_interval": 0.5,
    }
    values.update(extra)
    return SandboxOptions(**values)


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    box = Sandbox(sandbox_options(tmp_path / "data"))
    await box.start()
    try:
        yield box
    finally:
        await box.stop()


@pytest.fixture
def chromium() -> str:
    """The browser's path; skips (on CI: fails) saying how to get it when it is missing."""
    # On CI (make test runs tests/ensure_browser.sh first) a missing browser is a failure.
    give_up = pytest.fail if os.environ.get("CI") == "true" else pytest.skip
    if not os.path.exists(CHROMIUM):
        give_up("chromium not installed: apt-get install chromium")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        give_up("playwright not installed: pip install -e '.[dev]'")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: str, tmp_path: Path) -> AsyncIterator[Any]:
    """A fresh headless Chromium profile (a BrowserContext); pages come from new_page()."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        context = await p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1100, "height": 800},
        )
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            await context.close()
