"""When running on cannot help, ``udesk-bridge run`` stops and says why in one line: the bot
token refused at start, or revoked (@BotFather /revoke) while the bridge polls."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from tests.faults.rigs import Sims
from tests.faults.traffic import eventually
from tests.processes import BridgeProcess, bridge_env

REVOKED = "123456:the-token-before-revoke"


def _mentions_token(line: str) -> bool:
    return "TELEGRAM_BOT_TOKEN" in line and "401 Unauthorized" in line


async def test_a_refused_token_stops_the_start_with_one_line(
    sims: Sims, pg_url: str, tmp_path: Path
) -> None:
    env = bridge_env(
        pg_url,
        tmp_path / "media",
        sims.bridge_port,
        sims.udesk_port,
        sims.telegram_root,
        TELEGRAM_BOT_TOKEN=REVOKED,
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge.cli",
        "run",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    lines = stderr.decode().splitlines()
    assert process.returncode == 1, lines
    assert [line for line in lines if _mentions_token(line)] == [lines[-1]]
    assert lines[-1].startswith("configuration: Telegram refused TELEGRAM_BOT_TOKEN")
    assert not any("Traceback" in line for line in lines)


async def test_a_token_revoked_while_polling_stops_the_process(
    sims: Sims, pg_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "bridge.log"
    env = bridge_env(
        pg_url, tmp_path / "media", sims.bridge_port, sims.udesk_port, sims.telegram_root
    )
    bridge = BridgeProcess(env, sims.bridge_port, log)
    await bridge.start()
    try:
        await eventually(lambda: sims.telegram.calls("deleteWebhook"), what="polling")
        sims.telegram.bot_token = "123456:the-new-token"  # the old one now gets 401
        # Something to answer the long poll in flight, so the next getUpdates comes now.
        sims.telegram.inject_text({"id": 8801, "first_name": "Ann"}, "hello")
        assert bridge.proc is not None
        code = await asyncio.wait_for(bridge.proc.wait(), 60)
    finally:
        await bridge.stop()
    records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    loud = [r for r in records if r.get("level") in ("ERROR", "CRITICAL")]
    assert code == 1
    assert len(loud) == 1 and _mentions_token(loud[0]["msg"]), loud
    assert "Traceback" not in log.read_text()
