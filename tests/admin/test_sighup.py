"""`kill -HUP` on the running daemon reloads the routing file; a broken one is refused."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp

from bridge.sandbox.telegram_sim import TelegramSimulator
from tests.e2e.conftest import (
    BOT_TOKEN,
    PUSH_SECRET,
    UDESK_EMAIL,
    UDESK_TOKEN,
    free_port,
    start_udesk,
)

TOKEN = "sighup-admin-token-0123456789abcdef"
RULE = """\
rules:
  - name: {name}
    when: {{language: ru}}
    route: {{group_id: 200}}
"""


async def test_sighup_reloads_the_routing_file(tmp_path: Path) -> None:
    routing = tmp_path / "routing.yaml"
    routing.write_text(RULE.format(name="first version"))
    port, udesk_port = free_port(), free_port()
    _udesk, udesk_runner = await start_udesk(
        udesk_port, f"http://127.0.0.1:{port}/udesk/push/{PUSH_SECRET}"
    )
    telegram = TelegramSimulator(bot_token=BOT_TOKEN)
    tg_root = await telegram.start()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "TELEGRAM_API_URL": tg_root,
        "UDESK_API_URL": f"http://127.0.0.1:{udesk_port}/open_api_v1",
        "UDESK_EMAIL": UDESK_EMAIL,
        "UDESK_API_TOKEN": UDESK_TOKEN,
        "UDESK_PUSH_SECRET": PUSH_SECRET,
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bridge.db'}",
        "BRIDGE_HOST": "127.0.0.1",
        "BRIDGE_PORT": str(port),
        "MEDIA_DIR": str(tmp_path / "media"),
        "ROUTING_FILE": str(routing),
        "ADMIN_TOKEN": TOKEN,
        "LOG_FORMAT": "json",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge.cli", "run", env=env, stderr=asyncio.subprocess.PIPE
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}

    async def rule_names(http: aiohttp.ClientSession) -> list[str]:
        async with http.get(f"http://127.0.0.1:{port}/admin/routing", headers=headers) as r:
            assert r.status == 200
            return [rule["name"] for rule in (await r.json())["rules"]]

    async def until_rules_are(http: aiohttp.ClientSession, expected: list[str]) -> None:
        deadline = time.monotonic() + 20
        while True:
            try:
                if await rule_names(http) == expected:
                    return
            except aiohttp.ClientConnectionError:
                assert proc.returncode is None, "bridge exited early"
            assert time.monotonic() < deadline, f"timed out waiting for rules {expected}"
            await asyncio.sleep(0.1)

    try:
        async with aiohttp.ClientSession() as http:
            await until_rules_are(http, ["first version"])
            routing.write_text(RULE.format(name="second version"))
            proc.send_signal(signal.SIGHUP)
            await until_rules_are(http, ["second version"])

            routing.write_text(RULE.format(name="third version").replace("when:", "wen:"))
            proc.send_signal(signal.SIGHUP)
            await asyncio.sleep(0.5)
            assert await rule_names(http) == ["second version"]  # refused: the old rules stay
            assert proc.returncode is None  # and the daemon keeps running
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        assert proc.stderr is not None
        logs = (await proc.stderr.read()).decode()
        assert "routing reloaded (SIGHUP)" in logs
        assert "routing reload (SIGHUP) refused, the rules in force stay" in logs
        assert "unknown key 'wen'" in logs
        assert TOKEN not in logs
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await telegram.stop()
        await udesk_runner.cleanup()
