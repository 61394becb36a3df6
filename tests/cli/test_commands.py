"""The commands as an operator runs them: real processes, real exit codes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from bridge.sandbox.telegram_sim import TelegramSimulator
from tests.e2e.conftest import (
    BOT_TOKEN,
    PUSH_SECRET,
    UDESK_EMAIL,
    UDESK_TOKEN,
    free_port,
    start_udesk,
)

BRIDGE = [sys.executable, "-m", "bridge.cli"]
BASE_ENV = {
    "PATH": os.environ.get("PATH", ""),
    "TELEGRAM_BOT_TOKEN": "123:abc",
    "UDESK_API_URL": "http://127.0.0.1:9/open_api_v1",
    "UDESK_EMAIL": "admin@example.com",
    "UDESK_API_TOKEN": "udesk-token",
    "UDESK_PUSH_SECRET": PUSH_SECRET,
    "PUBLIC_URL": "https://bridge.example.com",
}


def test_help_everywhere() -> None:
    for args in ([], ["run"], ["migrate"], ["check-config"]):
        out = subprocess.run([*BRIDGE, *args, "--help"], capture_output=True, text=True)
        assert out.returncode == 0
        assert "usage: udesk-bridge" in out.stdout


def test_check_config_without_environment_lists_everything() -> None:
    out = subprocess.run(
        [*BRIDGE, "check-config"], capture_output=True, text=True, env={"PATH": ""}
    )
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    for name in ("TELEGRAM_BOT_TOKEN", "UDESK_API_URL", "UDESK_EMAIL", "UDESK_API_TOKEN"):
        assert f"{name}: missing (required)" in out.stderr


def test_run_without_settings_is_one_line_per_problem_not_a_traceback() -> None:
    out = subprocess.run([*BRIDGE, "run"], capture_output=True, text=True, env={"PATH": ""})
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert "configuration: UDESK_PUSH_SECRET: missing (required)" in out.stderr


# What an operator who copied an example file and stopped half-way would start with:
# (setting, value, the part of it that must never be echoed).
WEAK = {
    "short push secret": ("UDESK_PUSH_SECRET", "short-push-secret-31-characters", None),
    "short admin token": ("ADMIN_TOKEN", "short-admin-token-31-characters", None),
    "placeholder secret": ("UDESK_PUSH_SECRET", "CHANGE_ME_random_push_secret_0123456789", None),
    "placeholder password": (
        "DATABASE_URL",
        "postgresql+asyncpg://udesk_bridge:CHANGE_ME_db_password@127.0.0.1:9/udesk_bridge",
        "CHANGE_ME_db_password",
    ),
}


@pytest.mark.parametrize("command", ["check-config", "run"])
@pytest.mark.parametrize("case", list(WEAK))
def test_weak_or_placeholder_secrets_are_refused_at_start(
    command: str, case: str, tmp_path: Path
) -> None:
    name, value, secret = WEAK[case]
    env = BASE_ENV | {
        # Were the refusal missing, `run` would start: keep it off the real Telegram and
        # out of the working directory, and let the timeout end it.
        "TELEGRAM_API_URL": "http://127.0.0.1:9",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bridge.db'}",
        "MEDIA_DIR": str(tmp_path / "media"),
        name: value,
    }
    out = subprocess.run(
        [*BRIDGE, command], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=30
    )
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    naming = [line for line in out.stderr.splitlines() if f"{name}:" in line]
    assert len(naming) == 1, out.stderr
    problems = [line for line in out.stderr.splitlines() if line.startswith(("  ", "config"))]
    assert problems == naming, "the weak setting is the only problem"
    assert (secret or value) not in out.stderr + out.stdout
    assert not (tmp_path / "bridge.db").exists(), "refused before touching the database"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_run_serves_health_and_stops_cleanly_on_sigterm(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        database_url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"  # empty: run migrates
    else:
        database_url = request.getfixturevalue("pg_url")
    port = free_port()
    udesk_port = free_port()
    _udesk, udesk_runner = await start_udesk(
        udesk_port, f"http://127.0.0.1:{port}/udesk/push/{PUSH_SECRET}"
    )
    telegram = TelegramSimulator(bot_token=BOT_TOKEN)
    tg_root = await telegram.start()
    env = BASE_ENV | {
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "TELEGRAM_API_URL": tg_root,
        "UDESK_API_URL": f"http://127.0.0.1:{udesk_port}/open_api_v1",
        "UDESK_EMAIL": UDESK_EMAIL,
        "UDESK_API_TOKEN": UDESK_TOKEN,
        "DATABASE_URL": database_url,
        "BRIDGE_HOST": "127.0.0.1",
        "BRIDGE_PORT": str(port),
        "MEDIA_DIR": str(tmp_path / "media"),
        "LOG_FORMAT": "json",
    }
    proc = await asyncio.create_subprocess_exec(
        *BRIDGE, "run", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                        assert r.status == 200
                        break
                except aiohttp.ClientConnectionError:
                    assert proc.returncode is None, "bridge exited early"
                    assert time.monotonic() < deadline, "bridge did not start listening"
                    await asyncio.sleep(0.2)
            async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                assert r.status == 200
                assert (await r.json())["checks"]["database"] == "ok"
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        assert proc.stderr is not None
        logs = (await proc.stderr.read()).decode()
        assert "bridge started" in logs and "stopped" in logs
        assert UDESK_TOKEN not in logs and BOT_TOKEN not in logs
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await telegram.stop()
        await udesk_runner.cleanup()
