"""``udesk-bridge sandbox``: the real bridge between a local Udesk and a local Telegram.

One process, one event loop: the Udesk simulator, the Telegram Bot API simulator and the
bridge's ``BridgeApp`` (the same code path as ``udesk-bridge run``), plus two browser pages
mounted on the simulators' apps: the customer's Telegram chat and the agent console.

Start order: simulators, then the bridge (it needs both to answer).  Stop order: the bridge
first (it finishes or releases its work while both sides still answer), then the simulators.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from bridge.app import BridgeApp
from bridge.logs import setup_logging
from bridge.sandbox.pages import add_chat_routes, add_console_routes
from bridge.sandbox.pages.bridge_view import BridgeView
from bridge.sandbox.telegram_sim import TelegramSimulator
from bridge.sandbox.udesk_sim import UdeskSimulator
from bridge.settings import Settings

BOT_USERNAME = "udesk_sandbox_bot"
UDESK_EMAIL = "admin@sandbox.local"
DEFAULT_AGENTS = ((1, "Tom"), (2, "Jerry"))
# Environment variables the sandbox honours; everything else is chosen by the sandbox.
HONOURED_ENV = ("DATABASE_URL", "ROUTING_FILE", "LOG_LEVEL", "LOG_FORMAT")
_WILDCARD_HOSTS = {"", "0.0.0.0", "::"}


@dataclass(frozen=True)
class SandboxOptions:
    host: str = "127.0.0.1"
    udesk_port: int = 8801
    telegram_port: int = 8802
    bridge_port: int = 8800  # 0 anywhere: a free port (the tests use that)
    data_dir: Path = Path("./sandbox-data")
    agents: tuple[tuple[int, str], ...] = DEFAULT_AGENTS
    agent_capacity: int = 2  # small, so the queue is easy to see with a few chat tabs
    # Faster than the daemon's 15 s so a queued customer's position visibly moves.
    queue_poll_interval: float = 2.0
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))


class SandboxSettings(Settings):
    """Settings from the sandbox's own values only: a TELEGRAM_BOT_TOKEN or UDESK_API_URL
    left in the shell must never point the sandbox's bridge at the real services."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def url_host(host: str) -> str:
    """The host to put in URLs: loopback when listening on every interface."""
    if host in _WILDCARD_HOSTS:
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class Secrets:
    """Fresh per run: nothing the sandbox prints or stores works anywhere else."""

    bot_token: str
    udesk_api_token: str
    push_secret: str

    @classmethod
    def generate(cls) -> Secrets:
        bot_id = 100_000_000 + secrets.randbelow(900_000_000)
        return cls(
            bot_token=f"{bot_id}:{secrets.token_urlsafe(26)}",
            udesk_api_token=secrets.token_hex(16),
            # 43 characters: the bridge refuses push secrets shorter than 32.
            push_secret=secrets.token_urlsafe(32),
        )

    def values(self) -> list[str]:
        return [self.bot_token, self.udesk_api_token, self.push_secret]


def bridge_settings(
    options: SandboxOptions, secret: Secrets, *, udesk_url: str, telegram_url: str, port: int
) -> Settings:
    env = options.env
    data_dir = options.data_dir.resolve()
    values: dict[str, Any] = {
        "telegram_bot_token": secret.bot_token,
        "telegram_api_url": telegram_url,
        "udesk_api_url": f"{udesk_url}/open_api_v1",
        "udesk_email": UDESK_EMAIL,
        "udesk_api_token": secret.udesk_api_token,
        "udesk_push_secret": secret.push_secret,
        # The simulator has no quota; the vendor's 60/min would make a clicking human
        # wait behind queue polls and previews for no benefit.
        "udesk_rate_limit": "unlimited",
        "udesk_timeout": 5,
        "database_url": env.get("DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir / 'bridge.db'}",
        "bridge_host": options.host,
        "bridge_port": port,
        "public_url": f"http://{url_host(options.host)}:{port}",
        "media_dir": str(data_dir / "media"),
        "queue_poll_interval": options.queue_poll_interval,
        # Agent attachments are served by the Udesk simulator on loopback.
        "allow_private_media_urls": True,
        "log_level": env.get("LOG_LEVEL") or "INFO",
        "log_format": env.get("LOG_FORMAT") or "console",
    }
    if env.get("ROUTING_FILE"):
        values["routing_file"] = env["ROUTING_FILE"]
    return SandboxSettings(**values)


class Sandbox:
    """The three servers.  ``start`` returns once all listen; ``stop`` undoes what started."""

    def __init__(self, options: SandboxOptions | None = None) -> None:
        self.options = options or SandboxOptions()
        self.secrets = Secrets.generate()
        self.udesk = UdeskSimulator(email=UDESK_EMAIL, api_token=self.secrets.udesk_api_token)
        self.telegram = TelegramSimulator(
            bot_token=self.secrets.bot_token,
            bot_username=BOT_USERNAME,
            bot_first_name="Support Bot",
        )
        self.bridge: BridgeApp | None = None
        self.settings: Settings | None = None
        self.view = BridgeView()
        self._udesk_runner: web.AppRunner | None = None
        self._telegram_started = False
        self.udesk_url = self.telegram_url = self.bridge_url = ""

    async def start(self) -> None:
        opts = self.options
        host, shown = opts.host, url_host(opts.host)
        for agent_id, name in opts.agents:
            self.udesk.set_agent(agent_id, name, online=True, capacity=opts.agent_capacity)
        # Pages go on the apps before they start: aiohttp freezes the router then.
        add_console_routes(self.udesk.app, self.udesk, self.view.sessions)
        add_chat_routes(self.telegram.app, self.telegram)
        try:
            udesk_port = await self._start_udesk(host, opts.udesk_port)
            self.udesk_url = f"http://{shown}:{udesk_port}"
            await self.telegram.start(host, opts.telegram_port)
            self._telegram_started = True
            tg_port = int(str(self.telegram.base_url).rsplit(":", 1)[1])
            self.telegram_url = f"http://{shown}:{tg_port}"
            # public_url must be known before the bridge starts, so a free port is chosen
            # here rather than by the bridge's own bind.
            bridge_port = opts.bridge_port or free_port(host if host not in _WILDCARD_HOSTS else "")
            self.settings = bridge_settings(
                opts,
                self.secrets,
                udesk_url=self.udesk_url,
                telegram_url=self.telegram_url,
                port=bridge_port,
            )
            self.options.data_dir.mkdir(parents=True, exist_ok=True)
            self.bridge = BridgeApp(self.settings, run_migrations=True)
            await self.bridge.start()
            self.bridge_url = f"http://{shown}:{self.bridge.port}"
            self.udesk.push_url = f"{self.bridge_url}/udesk/push/{self.secrets.push_secret}"
            self.view.open(self.settings.database_url.get_secret_value())
        except BaseException:
            await self.stop()
            raise

    async def _start_udesk(self, host: str, port: int) -> int:
        self._udesk_runner = web.AppRunner(self.udesk.app, access_log=None, shutdown_timeout=2.0)
        await self._udesk_runner.setup()
        site = web.TCPSite(self._udesk_runner, host, port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if sockets else port

    @property
    def chat_url(self) -> str:
        return f"{self.telegram_url}/sandbox/chat?user=1001"

    @property
    def console_url(self) -> str:
        return f"{self.udesk_url}/sandbox/console"

    async def stop(self) -> None:
        await self.view.close()
        if self.bridge is not None:
            await self.bridge.stop()
            self.bridge = None
        if self._telegram_started:
            await self.telegram.stop()
            self._telegram_started = False
        if self._udesk_runner is not None:
            await self._udesk_runner.cleanup()
            self._udesk_runner = None

    def banner(self) -> str:
        assert self.settings is not None
        db = "SQLite" if self.settings.is_sqlite else "PostgreSQL (DATABASE_URL)"
        return "\n".join(
            [
                "",
                "Sandbox is running (Ctrl-C stops it):",
                f"  customer chat  {self.chat_url}",
                f"  agent console  {self.console_url}",
                "",
                f"  bridge {self.bridge_url}  udesk sim {self.udesk_url}  "
                f"telegram sim {self.telegram_url}",
                f"  database: {db}; data in {self.options.data_dir.resolve()}",
                f"  agents online: {', '.join(n for _, n in self.options.agents)}",
                "",
            ]
        )


async def serve(options: SandboxOptions) -> int:
    """Start, print the URLs, wait for SIGINT/SIGTERM, stop, exit 0."""
    sandbox = Sandbox(options)
    env = options.env
    setup_logging(
        (env.get("LOG_LEVEL") or "INFO").upper(),
        env.get("LOG_FORMAT") or "console",
        sandbox.secrets.values(),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            await sandbox.start()
        except OSError as exc:  # most likely a port in use
            print(f"sandbox: cannot start: {exc}", file=sys.stderr)
            return 1
        print(sandbox.banner(), flush=True)
        await stop.wait()
        print("sandbox: stopping", file=sys.stderr, flush=True)
    finally:
        await sandbox.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0
