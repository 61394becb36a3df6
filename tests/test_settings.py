"""Settings: every problem at once, readable; durations, rates, YAML, env precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.settings import Rate, SettingsError, load_settings, parse_duration, parse_rate
from tests.e2e.conftest import PUSH_SECRET

REQUIRED = {
    "TELEGRAM_BOT_TOKEN": "123:abc",
    "UDESK_API_URL": "https://demo.udesk.cn/open_api_v1",
    "UDESK_EMAIL": "admin@example.com",
    "UDESK_API_TOKEN": "udesk-token",
    "UDESK_PUSH_SECRET": PUSH_SECRET,
    "PUBLIC_URL": "https://bridge.example.com",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in list(__import__("os").environ):
        if key.startswith(("TELEGRAM_", "UDESK_", "DATABASE_", "BRIDGE_", "PUBLIC_", "MEDIA_")):
            monkeypatch.delenv(key)
    return monkeypatch


def test_every_missing_setting_is_listed(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert sorted(info.value.problems) == sorted(f"{k}: missing (required)" for k in REQUIRED)


def test_invalid_values_are_one_line_each(env: pytest.MonkeyPatch) -> None:
    for key, value in REQUIRED.items():
        env.setenv(key, value)
    env.setenv("MEDIA_TTL", "a week")
    env.setenv("UDESK_RATE_LIMIT", "fast")
    env.setenv("TELEGRAM_MODE", "webhook")
    with pytest.raises(SettingsError) as info:
        load_settings()
    problems = info.value.problems
    assert len(problems) == 3
    assert any(p.startswith("MEDIA_TTL: 'a week' is not a duration") for p in problems)
    assert any(p.startswith("UDESK_RATE_LIMIT: 'fast' is not a rate") for p in problems)
    assert "TELEGRAM_WEBHOOK_SECRET: required in webhook mode" in problems


def test_yaml_file_with_env_winning(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "bridge.yaml"
    lines = [f"{k.lower()}: {v}" for k, v in REQUIRED.items()] + ["media_ttl: 2h"]
    config.write_text("\n".join(lines) + "\nudesk_rate_limit: 30/min\n")
    env.setenv("UDESK_RATE_LIMIT", "10/s")
    settings = load_settings(config)
    assert settings.media_ttl == 7200
    assert settings.udesk_rate_limit == Rate(10, 1.0)
    assert settings.udesk_api_token.get_secret_value() == "udesk-token"
    assert "udesk-token" not in repr(settings)


def test_unknown_yaml_key_is_an_error(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "bridge.yaml"
    lines = [f"{k.lower()}: {v}" for k, v in REQUIRED.items()] + ["udesk_rate_limt: 5/s"]
    config.write_text("\n".join(lines))
    with pytest.raises(SettingsError) as info:
        load_settings(config)
    assert info.value.problems == ["udesk_rate_limt: unknown setting"]


@pytest.mark.parametrize(
    ("text", "seconds"), [("7d", 604800), ("30s", 30), ("5m", 300), ("2h", 7200), (15, 15)]
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "rate"),
    [("60/min", Rate(60, 60)), ("5/s", Rate(5, 1)), ("1000/h", Rate(1000, 3600))],
)
def test_rates(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate
    assert parse_rate("unlimited").unlimited


def test_intake_and_worker_roles_need_postgresql(env: pytest.MonkeyPatch) -> None:
    for key, value in REQUIRED.items():
        env.setenv(key, value)
    env.setenv("BRIDGE_ROLE", "intake")
    with pytest.raises(SettingsError) as info:
        load_settings()  # the default database is SQLite
    assert info.value.problems == [
        "BRIDGE_ROLE: intake and worker processes need PostgreSQL; use all on SQLite"
    ]
    env.setenv("DATABASE_URL", "postgresql+asyncpg://bridge@db/bridge")
    assert load_settings().bridge_role == "intake"


@pytest.mark.parametrize("name", ["UDESK_PUSH_SECRET", "ADMIN_TOKEN"])
def test_secrets_need_32_characters(env: pytest.MonkeyPatch, name: str) -> None:
    for key, value in REQUIRED.items():
        env.setenv(key, value)
    env.setenv(name, "a" * 31)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(f"{name}: shorter than 32 characters")
    assert "a" * 31 not in info.value.problems[0]
    env.setenv(name, "a" * 32)
    assert len(getattr(load_settings(), name.lower()).get_secret_value()) == 32


def test_a_placeholder_is_refused_in_any_setting(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key, value in REQUIRED.items():
        env.setenv(key, value)
    env.setenv("UDESK_EMAIL", "CHANGE_ME@example.com")
    config = tmp_path / "bridge.yaml"
    config.write_text("database_url: postgresql+asyncpg://u:CHANGE_ME_db_password@db/bridge\n")
    with pytest.raises(SettingsError) as info:
        load_settings(config)
    assert sorted(info.value.problems) == [
        f"{name}: still holds the example file's CHANGE_ME placeholder; put the real value"
        for name in ("DATABASE_URL", "UDESK_EMAIL")
    ]


def test_phone_default_region_is_checked_and_upper_cased(env: pytest.MonkeyPatch) -> None:
    for key, value in REQUIRED.items():
        env.setenv(key, value)
    env.setenv("PHONE_DEFAULT_REGION", "ru")
    assert load_settings().phone_default_region == "RU"
    env.setenv("PHONE_DEFAULT_REGION", "XX")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert any(
        p.startswith("PHONE_DEFAULT_REGION: 'XX' is not a region code") for p in info.value.problems
    )
