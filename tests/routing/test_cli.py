"""`udesk-bridge routing explain` and `check-config` as an operator runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import PUSH_SECRET

BRIDGE = [sys.executable, "-m", "bridge.cli"]
SETTINGS = {
    "TELEGRAM_BOT_TOKEN": "123:abc",
    "UDESK_API_URL": "http://127.0.0.1:9/open_api_v1",
    "UDESK_EMAIL": "admin@example.com",
    "UDESK_API_TOKEN": "udesk-token",
    "UDESK_PUSH_SECRET": PUSH_SECRET,
    "PUBLIC_URL": "https://bridge.example.com",
}
ROUTING = """\
default: {assign_type: agent, group_id: 37540}
rules:
  - name: vip customers
    when: {level: vip}
    route: {assign_type: agent, group_id: 100}
  - name: sales deep link
    when: {start_param: sales}
    route: {assign_type: urobot, robot_id: 12362, scene_id: 39}
business_hours:
  timezone: Asia/Shanghai
  weekly: {mon-fri: "09:00-18:00"}
  outside: leave_message
"""
BROKEN = """\
default: {assign_type: agent}
rules:
  - name: vip customers
    when: {levle: vip}
    route: {group_id: 100}
"""


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", "")}
    return subprocess.run(
        [*BRIDGE, *args], capture_output=True, text=True, env=base | (env or {}), timeout=30
    )


def request_body(output: str) -> dict[str, object]:
    return json.loads(output[output.index("{") :])


def test_explain_shows_the_rule_the_hours_and_the_exact_session_request(tmp_path: Path) -> None:
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING)
    # Only the routing file: none of the daemon's required settings are set.
    out = run(
        "routing", "explain", "--routing-file", str(routing), "--level", "VIP",
        "--at", "2026-11-25T10:00+08:00",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "rule: 'vip customers' (rules[0], line 3)" in out.stdout
    assert "business hours: within (Wed 2026-11-25 10:00 Asia/Shanghai)" in out.stdout
    assert request_body(out.stdout) == {
        "customer_token": "<customer_token>",
        "assign_type": "agent",
        "group_id": 100,
    }

    night = run(
        "routing", "explain", "--start-param", "none", "--at", "2026-11-25T20:00+08:00",
        env={"ROUTING_FILE": str(routing)},
    )  # fmt: skip
    assert night.returncode == 0, night.stderr
    assert "rule: none matched; default" in night.stdout
    assert "business hours: outside (Wed 2026-11-25 20:00 Asia/Shanghai; opens Thu" in night.stdout
    assert "decision: leave_message" in night.stdout
    assert request_body(night.stdout)["group_id"] == 37540  # what it would be within hours

    sales = run(
        "routing", "explain", "--routing-file", str(routing), "--start-param", "sales",
        "--at", "2026-11-25T20:00+08:00",
    )  # fmt: skip
    assert "robot routes ignore business hours" in sales.stdout
    assert request_body(sales.stdout) == {
        "customer_token": "<customer_token>",
        "assign_type": "urobot",
        "robot_id": 12362,
        "scene_id": 39,
    }


def test_explain_refuses_a_broken_file_with_its_line(tmp_path: Path) -> None:
    routing = tmp_path / "routing.yaml"
    routing.write_text(BROKEN)
    out = run("routing", "explain", "--level", "vip", env={"ROUTING_FILE": str(routing)})
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert f"{routing}:4: rules[0].when: unknown key 'levle' (did you mean 'level'?" in out.stderr
    assert out.stdout == ""


def test_check_config_validates_the_routing_file_too(tmp_path: Path) -> None:
    routing = tmp_path / "routing.yaml"
    routing.write_text(BROKEN)
    out = run("check-config", env=SETTINGS | {"ROUTING_FILE": str(routing)})
    assert out.returncode == 1
    assert "1 problem(s) in the routing file" in out.stderr
    assert f"{routing}:4: rules[0].when: unknown key 'levle'" in out.stderr

    # Settings broken too: every problem of both, at once; the file found via --config.
    config = tmp_path / "bridge.yaml"
    config.write_text(f"routing_file: {routing}\npublic_url: not-a-url\n")
    both = run("check-config", "--config", str(config))
    assert both.returncode == 1
    assert f"{routing}:4:" in both.stderr
    assert "TELEGRAM_BOT_TOKEN: missing (required)" in both.stderr
    assert "PUBLIC_URL:" in both.stderr

    routing.write_text(ROUTING)
    good = run("check-config", env=SETTINGS | {"ROUTING_FILE": str(routing)})
    assert good.returncode == 0, good.stderr
    assert f"routing: {routing}: 2 rule(s), default assign_type=agent group_id=37540" in good.stdout
    assert "business hours: Asia/Shanghai, outside: leave_message" in good.stdout
