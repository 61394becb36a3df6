"""``udesk-bridge sandbox`` without a browser: settings, the three servers, the console's
digest, uploads, and the command's start/stop as an operator runs it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from bridge.sandbox.run import Sandbox, SandboxSettings, Secrets, bridge_settings
from bridge.sandbox.telegram_sim.media import make_jpeg
from tests.sandbox.conftest import eventually, sandbox_options


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_settings_come_from_the_sandbox_not_the_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real token left in the shell must not reach the sandbox's bridge.
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "999:real-token-from-the-shell")
    monkeypatch.setenv("UDESK_API_URL", "https://real.udesk.cn/open_api_v1")
    routing = tmp_path / "routing.yaml"
    routing.write_text("default: {assign_type: agent}\n")
    options = sandbox_options(
        tmp_path / "data",
        env={"ROUTING_FILE": str(routing), "DATABASE_URL": "sqlite+aiosqlite:///x.db"},
    )
    secret = Secrets.generate()
    settings = bridge_settings(
        options, secret, udesk_url="http://127.0.0.1:1", telegram_url="http://127.0.0.1:2", port=3
    )
    assert isinstance(settings, SandboxSettings)
    assert settings.telegram_bot_token.get_secret_value() == secret.bot_token
    assert settings.udesk_api_url == "http://127.0.0.1:1/open_api_v1"
    assert settings.telegram_api_url == "http://127.0.0.1:2"
    assert settings.database_url.get_secret_value() == "sqlite+aiosqlite:///x.db"
    assert settings.routing_file == routing
    assert settings.public_url == "http://127.0.0.1:3"
    assert settings.allow_private_media_urls
    assert settings.udesk_rate_limit.unlimited
    assert settings.media_dir == (tmp_path / "data" / "media").resolve()


def test_default_database_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    settings = bridge_settings(
        sandbox_options(tmp_path / "d"),
        Secrets.generate(),
        udesk_url="http://127.0.0.1:1",
        telegram_url="http://127.0.0.1:2",
        port=3,
    )
    url = settings.database_url.get_secret_value()
    assert url == f"sqlite+aiosqlite:///{(tmp_path / 'd' / 'bridge.db').resolve()}"
    assert settings.routing_file is None
    assert Secrets.generate() != Secrets.generate()  # fresh fake secrets every run


async def test_servers_pages_and_console_digest(sandbox: Sandbox) -> None:
    assert sandbox.udesk.push_url == (
        f"{sandbox.bridge_url}/udesk/push/{sandbox.secrets.push_secret}"
    )
    async with aiohttp.ClientSession() as http:
        async with http.get(sandbox.chat_url) as r:
            assert r.status == 200
            assert "Support Bot" in await r.text()
        async with http.get(sandbox.console_url) as r:
            assert r.status == 200
        async with http.get(f"{sandbox.bridge_url}/healthz") as r:
            assert r.status == 200
        async with http.get(f"{sandbox.telegram_url}/sandbox/static/chat.js") as r:
            assert r.status == 200

        sandbox.telegram.inject_command({"id": 1001, "first_name": "Alice"}, "/start")
        sandbox.telegram.inject_text(1001, "Where is my parcel?")
        token = "tg-1001"
        await eventually(lambda: sandbox.udesk.session_of(token), what="an agent session")

        async def digest() -> dict:
            async with http.get(f"{sandbox.udesk_url}/sandbox/console/state?token={token}") as r:
                assert r.status == 200
                return dict(await r.json())

        async def settled() -> dict | None:
            # The rule comes from the bridge's database, start_session from a push that
            # follows the session's creation: both land a moment after the session.
            state = await digest()
            events = [i["type"] for i in state["selected"]["timeline"] if i["from"] == "event"]
            return state if state["selected"]["rule_name"] and events else None

        state = await eventually(settled, what="the routing rule and start_session")
    rows = await sandbox.view.sessions()
    assert state["selected"]["rule_name"] == rows[-1]["rule_name"]
    assert {a["name"]: a["status"] for a in state["agents"]} == {
        "Tom": "online",
        "Jerry": "online",
    }
    [conversation] = state["conversations"]
    assert conversation["status"] == "agent" and conversation["name"].startswith("Alice")
    texts = [i["content"] for i in state["selected"]["timeline"] if i["from"] == "customer"]
    assert texts == ["Where is my parcel?"]
    events = [i["type"] for i in state["selected"]["timeline"] if i["from"] == "event"]
    assert events[:1] == ["start_session"]


async def test_agent_upload_is_served_back(sandbox: Sandbox) -> None:
    image = make_jpeg(40, 30, label="upload")
    form = aiohttp.FormData()
    form.add_field("file", image, filename="pic.jpg", content_type="image/jpeg")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sandbox.udesk_url}/sandbox/console/upload", data=form) as r:
            assert r.status == 200
            answer = await r.json()
        assert answer["url"].startswith(sandbox.udesk_url)
        async with http.get(answer["url"]) as r:
            assert r.status == 200 and r.content_type == "image/jpeg"
            assert await r.read() == image


def _start_cli(tmp_path: Path, ports: list[int]) -> subprocess.Popen[str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    args = [
        *("--udesk-port", str(ports[0]), "--telegram-port", str(ports[1])),
        *("--bridge-port", str(ports[2]), "--data-dir", str(tmp_path / "data")),
    ]
    return subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "sandbox", *args],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.timeout(90)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_command_prints_urls_and_stops_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    ports = [_free_port() for _ in range(3)]
    proc = _start_cli(tmp_path, ports)
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        assert proc.stdout is not None and proc.stderr is not None
        while not any("agent console" in line for line in lines):
            line = proc.stdout.readline()
            assert line or proc.poll() is None, f"exited early: {proc.stderr.read()}"
            lines.append(line)
            assert time.monotonic() < deadline, "no URLs printed"
        chat = next(line.split()[-1] for line in lines if "customer chat" in line)
        console = next(line.split()[-1] for line in lines if "agent console" in line)
        assert chat == f"http://127.0.0.1:{ports[1]}/sandbox/chat?user=1001"
        assert console == f"http://127.0.0.1:{ports[0]}/sandbox/console"
        with urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/sandbox/console/state") as r:
            assert [a["name"] for a in json.load(r)["agents"]] == ["Tom", "Jerry"]
        with urllib.request.urlopen(chat) as r:
            assert r.status == 200
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 0
        assert (tmp_path / "data" / "bridge.db").exists()
        # Everything stopped: nothing listens on the three ports any more.
        for port in ports:
            with socket.socket() as s:
                assert s.connect_ex(("127.0.0.1", port)) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_command_reports_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _start_cli(tmp_path, [port, _free_port(), _free_port()])
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "sandbox: cannot start" in err


ROUTING = """
default: {assign_type: agent}
rules:
  - name: chinese speakers
    when: {language: zh}
    route: {assign_type: agent, agent_id: 2}
  - name: sales deep link
    when: {start_param: sales}
    route: {assign_type: urobot, robot_id: 12362, scene_id: 39}
"""


async def test_routing_file_is_honoured_and_shown(tmp_path: Path) -> None:
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING)
    box = Sandbox(sandbox_options(tmp_path / "data", env={"ROUTING_FILE": str(routing)}))
    await box.start()
    try:
        box.telegram.inject_text({"id": 1005, "first_name": "Li", "language_code": "zh"}, "你好")
        box.telegram.inject_command({"id": 1006, "first_name": "Sam"}, "/start", "sales")
        box.telegram.inject_text(1006, "prices?")
        await eventually(lambda: box.udesk.session_of("tg-1005"), what="Li with an agent")
        await eventually(
            lambda: any(p.kind == "urobot" for p in box.udesk.push_log), what="a urobot answer"
        )
        async with aiohttp.ClientSession() as http:

            async def both_rules() -> dict | None:
                async with http.get(f"{box.udesk_url}/sandbox/console/state") as r:
                    rows = {c["token"]: c for c in (await r.json())["conversations"]}
                ready = all(rows.get(t, {}).get("rule_name") for t in ("tg-1005", "tg-1006"))
                return rows if ready else None

            rows = await eventually(both_rules, what="rule names in the console")
    finally:
        await box.stop()
    assert rows["tg-1005"]["rule_name"] == "chinese speakers"
    assert rows["tg-1005"]["agent_name"] == "Jerry"
    assert rows["tg-1006"]["rule_name"] == "sales deep link"
    assert rows["tg-1006"]["status"] == "urobot"


async def test_console_shows_the_message_preview(sandbox: Sandbox) -> None:
    token = "tg-1007"
    sandbox.telegram.inject_text({"id": 1007, "first_name": "Eve"}, "hello")
    await eventually(lambda: sandbox.udesk.messages_for(token), what="the first message")
    # A slow Udesk makes the bridge show the agent a preview of the message on its way.
    sandbox.udesk.inject_fault("/im/messages", "latency", delay=2.0, count=1)
    sandbox.telegram.inject_text(1007, "my order 1042 never arrived")
    url = f"{sandbox.udesk_url}/sandbox/console/state?token={token}"
    async with aiohttp.ClientSession() as http:

        async def selected() -> dict:
            async with http.get(url) as r:
                return dict((await r.json())["selected"])

        async def live() -> bool:
            return (await selected())["preview"] == "my order 1042 never arrived"

        async def landed() -> dict | None:
            state = await selected()
            return state if not state["preview"] and len(state["timeline"]) >= 4 else None

        await eventually(live, what="the live preview")
        state = await eventually(landed, what="the message to land")
    assert state["last_preview"]["content"] == "my order 1042 never arrived"
