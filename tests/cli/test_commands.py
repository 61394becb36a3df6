"""The commands as an operator runs them: real processes, real exit codes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

BRIDGE = [sys.executable, "-m", "bridge.cli"]
BASE_ENV = {
    "PATH": os.environ.get("PATH", ""),
    "TELEGRAM_BOT_TOKEN": "123:abc",
    "UDESK_API_URL": "http://127.0.0.1:9/open_api_v1",
    "UDESK_EMAIL": "admin@example.com",
    "UDESK_API_TOKEN": "udesk-token",
    "UDESK_PUSH_SECRET": "push-secret",
    "PUBLIC_URL": "https://bridge.example.com",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_run_serves_health_and_stops_cleanly_on_sigterm(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        database_url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"  # empty: run migrates
    else:
        database_url = request.getfixturevalue("pg_url")
    port = _free_port()
    env = BASE_ENV | {
        "DATABASE_URL": database_url,
        "BRIDGE_HOST": "127.0.0.1",
        "BRIDGE_PORT": str(port),
        "MEDIA_DIR": str(tmp_path / "media"),
        "LOG_FORMAT": "json",
    }
    proc = subprocess.Popen([*BRIDGE, "run"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "bridge did not start listening"
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
            assert r.status == 200
            assert b'"database": "ok"' in r.read()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        logs = proc.stderr.read() if proc.stderr else ""
        assert "udesk-token" not in logs and "123:abc" not in logs
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
