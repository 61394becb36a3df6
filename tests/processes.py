"""``udesk-bridge run`` as a real child process: for crash tests, replicas and benchmarks."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp

from tests.e2e.conftest import BOT_TOKEN, PUSH_SECRET, UDESK_EMAIL, UDESK_TOKEN


def bridge_env(
    database_url: str,
    media_dir: Path,
    port: int,
    udesk_port: int,
    telegram_root: str,
    **extra: str,
) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "TELEGRAM_API_URL": telegram_root,
        "UDESK_API_URL": f"http://127.0.0.1:{udesk_port}/open_api_v1",
        "UDESK_EMAIL": UDESK_EMAIL,
        "UDESK_API_TOKEN": UDESK_TOKEN,
        "UDESK_PUSH_SECRET": PUSH_SECRET,
        "UDESK_RATE_LIMIT": "unlimited",
        "UDESK_TIMEOUT": "2s",
        "DATABASE_URL": database_url,
        "BRIDGE_HOST": "127.0.0.1",
        "BRIDGE_PORT": str(port),
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "MEDIA_DIR": str(media_dir),
        "QUEUE_LEASE": "2s",
        "ALLOW_PRIVATE_MEDIA_URLS": "true",
        "LOG_FORMAT": "json",
    }
    env.update(extra)
    return env


class BridgeProcess:
    """Start, kill (SIGKILL) and stop (SIGTERM) a bridge process."""

    def __init__(
        self, env: dict[str, str], port: int, log: Path | None = None, *, nice: int = 0
    ) -> None:
        self.env = env
        self.port = port
        self.log = log
        self.nice = nice  # CPU priority below others', as a deployment may give a worker
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        output = self.log.open("ab") if self.log else asyncio.subprocess.DEVNULL
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bridge.cli",
            "run",
            env=self.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=output,
            preexec_fn=(lambda: os.nice(self.nice)) if self.nice else None,
        )
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                if self.proc.returncode is not None:
                    raise AssertionError(f"bridge exited with {self.proc.returncode}")
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/healthz") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
        raise AssertionError("bridge did not start")

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> int | None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            return await asyncio.wait_for(self.proc.wait(), 30)
        return self.proc.returncode if self.proc else None
