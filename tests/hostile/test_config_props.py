"""Routing files and settings from anything: a Router/Settings, or RoutingFileError /
SettingsError listing the problems, never another exception (no traceback at start)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bridge.core import routing_file
from bridge.core.routing import Router, RoutingFileError
from bridge.settings import Settings, SettingsError, load_settings
from tests.e2e.conftest import PUSH_SECRET
from tests.hostile.strategies import NASTY_STRINGS, json_values

PROPS = settings(max_examples=150, deadline=None)
_DIR = Path(tempfile.mkdtemp(prefix="hostile-config-"))

# The YAML reader refuses these characters anywhere in a document.
_YAML_PRINTABLE = st.characters(
    codec="utf-8",
    exclude_characters="\ufeff\ufffe\uffff",
    exclude_categories=("Cc", "Cs"),
    include_characters="\t\n\r\x85",
)


def write(content: str | bytes, name: str = "file.yaml") -> Path:
    path = _DIR / name
    if isinstance(content, str):
        content = content.encode("utf-8", "surrogatepass")
    path.write_bytes(content)
    return path


def load_router(content: str | bytes) -> Router | None:
    try:
        return routing_file.load_router(write(content, "routing.yaml"))
    except RoutingFileError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        return None


# --- routing file ------------------------------------------------------------------------

YAML_SNIPPETS = [
    "default:\n", "  assign_type: agent\n", "  group_id: 37540\n", "rules:\n",
    "  - name: vip\n", "    when: {level: vip}\n", "    when: {language: [ru, uk]}\n",
    "    route: {assign_type: urobot, robot_id: 1, scene_id: 2}\n", "business_hours:\n",
    "  timezone: Asia/Shanghai\n", "  timezone: ../../etc/passwd\n",
    '  weekly: {mon-fri: "09:00-18:00"}\n', "  weekly: {mon-fri: 0900}\n",
    '  holidays: [2026-02-30, "2026-10-01..2025-01-01"]\n', "  outside: robot\n",
    "no_agent_online: {assign_type: agent}\n", "queue: {max_wait: 0}\n",
    "queue: {max_wait: 1e999}\n", "texts:\n", '  en: {queued: "{position} {x}"}\n',
    '  en: {queued: "{"}\n', "fallback_language: x-\n", "&a [1]\n", "*a\n", "*undefined\n",
    "!!python/object:os.system ls\n", "!!binary AAAA\n", "? [a, b]\n: 1\n", "---\n", "...\n",
    "%YAML 1.1\n", "\t", "  ", "- ", ": ", "{", "}", "[", "]", "'", '"', "#", "|\n", ">\n",
    "<<: *a\n", "2026-01-01: x\n", "yes: no\n", "~: ~\n", "0x1F: .inf\n",
]  # fmt: skip

ROUTING_KEYS = ["default", "rules", "business_hours", "no_agent_online", "queue", "texts",
                "fallback_language", "when", "route", "name", "assign_type", "group_id",
                "agent_id", "robot_id", "scene_id", "robot_role_id", "channel", "language",
                "start_param", "level", "tags", "chat_type", "timezone", "weekly", "holidays",
                "outside", "max_wait", "en", "zh", "queued", "mon-fri", "sat", "daily"]  # fmt: skip
routing_scalars = st.one_of(
    json_values,
    st.sampled_from(
        [
            *NASTY_STRINGS,
            "agent",
            "robot",
            "urobot",
            "leave_message",
            "09:00-18:00",
            "24:00-00:00",
            "mon-fri",
            "fri-mon",
            "Asia",
            "UTC",
            "",
            "2026-10-01..2026-10-07",
            "10m",
            "-5s",
            "{position}",
            "{",
            "}",
        ]
    ),
    st.dates(),
)
routing_trees = st.recursive(
    routing_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(ROUTING_KEYS), children, max_size=4),
    ),
    max_leaves=20,
)


def dump(value: Any) -> str:
    return yaml.safe_dump(value, allow_unicode=True)


@PROPS
@given(st.text(alphabet=_YAML_PRINTABLE, max_size=400))
@example("default: &a {assign_type: agent}\nrules: [*a, *a]\n")
@example("[" * 3000)
@example("a: " + "{a: " * 3000)
def test_routing_file_from_arbitrary_printable_text(text: str) -> None:
    load_router(text)


@PROPS
@given(st.lists(st.sampled_from(YAML_SNIPPETS), max_size=20).map("".join))
def test_routing_file_from_yaml_snippets(text: str) -> None:
    load_router(text)


@PROPS
@given(st.dictionaries(st.sampled_from(ROUTING_KEYS[:7]), routing_trees, max_size=7))
def test_routing_file_from_random_structures(tree: dict[str, Any]) -> None:
    load_router(dump(tree))


@PROPS
@given(st.binary(max_size=300))
@example(b"\xff\xfe")
@example(b"default:\n  assign_type: \xc3\x28\n")
def test_routing_file_from_arbitrary_bytes(raw: bytes) -> None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        load_router(raw)
        return
    if not yaml.reader.Reader.NON_PRINTABLE.search(text):  # those: see the xfail below
        load_router(raw)


@pytest.mark.parametrize("bad", ["\x00", "default:\n  channel: a\x01b\n", "\ufffe", "\x7f"])
def test_routing_file_with_a_control_character(bad: str) -> None:
    load_router(bad)


def test_routing_file_alias_bomb_is_refused_quickly() -> None:
    """A "billion laughs" file must not hang the daemon at start or on reload."""
    bomb = "default: {assign_type: agent}\nx0: &x0 [a, a, a, a, a, a, a, a, a]\n"
    for i in range(1, 6):
        bomb += f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 9) + "]\n"
    with pytest.raises(RoutingFileError):
        routing_file.load_router(write(bomb, "bomb-small.yaml"))


@pytest.mark.xfail(
    strict=True,
    reason="BUG (DoS, low): routing_file._Located.index walks every alias expansion; a "
    "2 KB 'billion laughs' file takes seconds to minutes (exponential) instead of failing",
)
def test_routing_file_alias_bomb_of_seven_levels_is_refused_quickly() -> None:
    bomb = "x0: &x0 [a, a, a, a, a, a, a, a, a]\n"
    for i in range(1, 8):
        bomb += f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 9) + "]\n"
    path = write(bomb, "bomb.yaml")
    code = textwrap.dedent(
        f"""
        from bridge.core.routing import RoutingFileError
        from bridge.core.routing_file import load_router
        try:
            load_router({str(path)!r})
        except RoutingFileError:
            pass
        """
    )
    try:
        subprocess.run([sys.executable, "-c", code], timeout=1.5, check=True)
    except subprocess.TimeoutExpired:
        pytest.fail("loading a 2 KB routing file took more than 1.5 s")


# --- settings ----------------------------------------------------------------------------

SETTING_NAMES = list(Settings.model_fields)
REQUIRED = {
    "TELEGRAM_BOT_TOKEN": "123:abc",
    "UDESK_API_URL": "https://x.udesk.cn/open_api_v1",
    "UDESK_EMAIL": "a@b.c",
    "UDESK_API_TOKEN": "t",
    "UDESK_PUSH_SECRET": PUSH_SECRET,
    "PUBLIC_URL": "https://bridge.example",
}
env_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00", exclude_categories=("Cs",)),
    max_size=40,
)
env_values = st.one_of(
    env_text,
    st.sampled_from(
        [
            "",
            " ",
            "0",
            "-1",
            "99999999999999999999",
            "1e999",
            "nan",
            "true",
            "yes",
            "webhook",
            "polling",
            "debug",
            "json",
            "60/min",
            "0/s",
            "1/0s",
            "unlimited",
            "7d",
            "-7d",
            "1" * 5000,
            "postgresql+asyncpg://u:p@h/db",
            "sqlite+aiosqlite:///x.db",
            "{}",
            "[]",
            "null",
            "https://",
            "http://[::1",
            "\\\\?\\C:",
        ]
    ),
)


def environment(values: dict[str, str]) -> Any:
    return mock.patch.dict(os.environ, values, clear=True)


def settings_or_error(config_file: Path | None = None) -> Settings | None:
    try:
        return load_settings(config_file)
    except SettingsError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        assert all("\n" not in p for p in exc.problems), "one line per problem"
        return None


@PROPS
@given(
    st.dictionaries(st.sampled_from(list(REQUIRED)), env_values, max_size=6),
    st.dictionaries(
        st.sampled_from(SETTING_NAMES).map(str.upper), env_values, min_size=1, max_size=8
    ),
    st.booleans(),
)
def test_settings_from_random_environment(
    required: dict[str, str], others: dict[str, str], complete: bool
) -> None:
    env = ({**REQUIRED} if complete else {}) | required | others
    with environment(env):
        settings_or_error()


@PROPS
@given(st.dictionaries(st.sampled_from(SETTING_NAMES), routing_trees, max_size=8))
def test_settings_from_a_random_config_file(tree: dict[str, Any]) -> None:
    with environment(REQUIRED):
        settings_or_error(write(dump(tree), "config.yaml"))


@PROPS
@given(st.text(alphabet=_YAML_PRINTABLE, max_size=300))
def test_settings_from_an_arbitrary_printable_config_file(text: str) -> None:
    with environment({}):
        settings_or_error(write(text, "config.yaml"))


@pytest.mark.parametrize(
    "content",
    [b"telegram_bot_token: \xff\xfe\n", b"[" * 5000 + b"]" * 5000, b"a: " + b"{a: " * 3000],
    ids=["not-utf8", "deep-list", "deep-mapping"],
)
def test_settings_from_a_broken_config_file(content: bytes) -> None:
    with environment(REQUIRED):
        settings_or_error(write(content, "config.yaml"))
