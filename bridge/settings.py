"""The bridge's settings: environment variables, optionally a YAML file with the same keys.

Every variable of the contract is here.  Environment variables win over the YAML file so an
operator can override one value without editing the file.  Problems are reported all at
once as one readable line each (``SettingsError.problems``), never as a traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import SettingsError as _SourceError

_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|m|h|d|w)?\s*$")
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?\s*)?(s|sec|second|m|min|minute|h|hour)\s*$")
_RATE_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}
_RATE_UNITS |= {"h": 3600, "hour": 3600}

# The example files (deploy/bridge.env.example, deploy/compose.env.example,
# deploy/k8s/secret.example.yaml) mark every value to fill in with this.  A value still
# holding it was copied, not configured: the bridge must not start on it, least of all with
# a secret anyone can read in the repository.
PLACEHOLDER = "CHANGE_ME"
# The push secret is the only thing between the internet and the push endpoints, and the
# admin token the only thing guarding /admin/*: both must be too long to guess.
MIN_SECRET_LENGTH = 32
_MAKE_SECRET = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def parse_duration(value: Any) -> float:
    """``"7d"`` → 604800.0 seconds; plain numbers are seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 5m, 2h or 7d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    match = _DURATION_RE.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration; use e.g. 30s, 5m, 2h or 7d")
    number, unit = match.groups()
    return float(number) * _DURATION_UNITS[unit or "s"]


@dataclass(frozen=True)
class Rate:
    """``calls`` per ``per_seconds``; ``calls == 0`` means unlimited."""

    calls: int
    per_seconds: float

    @property
    def unlimited(self) -> bool:
        return self.calls == 0

    def __str__(self) -> str:
        return "unlimited" if self.unlimited else f"{self.calls}/{self.per_seconds:g}s"


def parse_rate(value: Any) -> Rate:
    """``"60/min"`` → Rate(60, 60.0); ``"unlimited"`` or ``0`` → no limit."""
    if isinstance(value, Rate):
        return value
    text = str(value).strip().lower()
    if text in {"0", "off", "unlimited", "none"}:
        return Rate(0, 1.0)
    match = _RATE_RE.match(text)
    if not match:
        raise ValueError(f"{value!r} is not a rate; use e.g. 60/min, 5/s or 1000/h")
    calls, multiple, unit = match.groups()
    per = _RATE_UNITS[unit] * (float(multiple) if multiple else 1.0)
    if int(calls) <= 0:
        raise ValueError("a rate needs at least one call")
    return Rate(int(calls), float(per))


Duration = Annotated[float, BeforeValidator(parse_duration)]
RateValue = Annotated[Rate, NoDecode, BeforeValidator(parse_rate)]


class Settings(BaseSettings):
    """Every setting of the contract plus the tuning knobs documented in the README."""

    model_config = SettingsConfigDict(
        case_sensitive=False, extra="forbid", env_ignore_empty=True, validate_default=True
    )

    # Telegram
    telegram_bot_token: SecretStr
    telegram_api_url: str = "https://api.telegram.org"
    telegram_mode: Literal["polling", "webhook"] = "polling"
    telegram_webhook_secret: SecretStr | None = None
    telegram_rate_limit: RateValue = Field(default_factory=lambda: Rate(30, 1.0))
    telegram_chat_rate_limit: RateValue = Field(default_factory=lambda: Rate(1, 1.05))

    # Udesk
    udesk_api_url: str
    udesk_email: str
    udesk_api_token: SecretStr
    udesk_push_secret: SecretStr
    udesk_rate_limit: RateValue = Field(default_factory=lambda: Rate(60, 60.0))
    udesk_timeout: Duration = 10.0

    # Storage and server
    database_url: SecretStr = SecretStr("sqlite+aiosqlite:///bridge.db")
    # PostgreSQL connections per process (a fixed pool; tasks wait for a free one).
    database_pool_size: int = Field(default=20, ge=1, le=500)
    # What this process does (PostgreSQL only, for anything but "all"): "intake" takes
    # Telegram updates and answers pushes but sends nothing; "worker" sends (the queues'
    # dispatchers and the periodic jobs) and takes no Telegram updates.
    bridge_role: Literal["all", "intake", "worker"] = "all"
    bridge_host: str = "0.0.0.0"
    bridge_port: int = Field(default=8080, ge=0, le=65535)
    public_url: str  # media links always need it; webhook mode too
    routing_file: Path | None = None
    admin_token: SecretStr | None = None
    media_dir: Path = Path("./media")
    media_ttl: Duration = 7 * 86400.0
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] | None = None

    # Delivery tuning (documented in the README; the defaults suit one Udesk company)
    delivery_deadline: Duration = 3600.0
    queue_lease: Duration = 60.0
    album_debounce: Duration = 1.0
    queue_poll_interval: Duration = 15.0
    ticket_poll_interval: Duration = 60.0
    max_media_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    allow_private_media_urls: bool = False

    # --- identity (call center, field push, deep links) ---
    phone_default_region: str = "CN"  # numbers without a country code are read in it
    deeplink_secret: SecretStr | None = None  # signs /start links to existing customers
    # --- end identity ---

    # --- privacy (retention and erasure; bridge/store/retention.py, bridge/privacy) ---
    retain_message_bodies: Duration = 30 * 86400.0  # finished records' payloads → {}
    retain_rejected_pushes: Duration = 14 * 86400.0
    retain_closed_sessions: Duration = 90 * 86400.0  # closed sessions, surveys, buttons
    purge_interval: Duration = 3600.0  # 0 turns the purge job off
    forget_command: bool = False  # the /forget Telegram command
    # --- end privacy ---

    @field_validator("*", mode="before")
    @classmethod
    def _no_placeholder(cls, value: Any) -> Any:
        # Every setting, not just the secrets: a CHANGE_ME in a DATABASE_URL password or
        # anywhere else means the example file was never finished.  The message names the
        # setting (the caller adds it) and never repeats the value.
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str) and PLACEHOLDER in text:
            raise ValueError(
                f"still holds the example file's {PLACEHOLDER} placeholder; put the real value"
            )
        return value

    @field_validator("udesk_push_secret", "admin_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # The length only: saying how short (or what) the value is would leak part of it.
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"shorter than {MIN_SECRET_LENGTH} characters; make one with {_MAKE_SECRET}"
            )
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("telegram_api_url", "udesk_api_url", "public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        if not url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            raise ValueError("use postgresql+asyncpg://… or sqlite+aiosqlite:///path.db")
        return value

    # --- identity ---
    @field_validator("phone_default_region")
    @classmethod
    def _phone_region(cls, value: str) -> str:
        # phonenumbers directly (as bridge.core.phones.is_known_region does): settings is a
        # basic module and imports nothing of the bridge's conversation rules.
        import phonenumbers

        if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value!r} is not a region code (ISO 3166 alpha-2, e.g. CN, RU)")
        return value.upper()

    # --- end identity ---

    @field_validator("bridge_role")
    @classmethod
    def _role(cls, value: str, info: ValidationInfo) -> str:
        url = info.data.get("database_url")
        if value != "all" and url is not None and url.get_secret_value().startswith("sqlite"):
            raise ValueError("intake and worker processes need PostgreSQL; use all on SQLite")
        return value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if info.data.get("telegram_mode") == "webhook" and value is None:
            raise ValueError("required in webhook mode")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first: the YAML file (passed as init values) is the fallback.
        return env_settings, init_settings

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.get_secret_value().startswith("sqlite")

    def secrets(self) -> list[str]:
        """Every secret value, for the log redactor."""
        values = [
            self.telegram_bot_token,
            self.udesk_api_token,
            self.udesk_push_secret,
            self.admin_token,
            self.telegram_webhook_secret,
            self.deeplink_secret,  # identity
        ]
        found = [v.get_secret_value() for v in values if v is not None]
        # The bot token's secret half alone too: a URL split at the colon still carries it.
        _, _, half = self.telegram_bot_token.get_secret_value().partition(":")
        if len(half) >= 16:
            found.append(half)
        password = re.search(r"://[^:/@]+:([^@]+)@", self.database_url.get_secret_value())
        if password:
            found.append(password.group(1))
        return [s for s in found if s]


class SettingsError(Exception):
    """Settings that cannot start the bridge; ``problems`` holds one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _describe(error: dict[str, Any]) -> str:
    loc = error.get("loc") or ()
    name = str(loc[0]).upper() if loc else "settings"
    if error["type"] == "missing":
        return f"{name}: missing (required)"
    if error["type"] == "extra_forbidden":
        return f"{name.lower()}: unknown setting"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{name}: {message}" if loc else message


def load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError([f"{path}: cannot read ({exc.strerror})"]) from None
    except UnicodeDecodeError:
        raise SettingsError([f"{path}: not UTF-8 text"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise SettingsError([f"{path}{where}: not valid YAML"]) from None
    except RecursionError:
        raise SettingsError([f"{path}: nested too deeply to be a settings file"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError([f"{path}: expected a mapping of setting names to values"])
    return {str(k).lower(): v for k, v in data.items()}


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings or raise SettingsError listing every problem at once."""
    values = load_yaml(config_file) if config_file else {}
    values.update(overrides)
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise SettingsError([_describe(dict(e)) for e in exc.errors()]) from None
    except _SourceError as exc:
        raise SettingsError([str(exc)]) from None
