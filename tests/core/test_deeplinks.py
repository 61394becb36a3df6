"""Signed /start payloads: within Telegram's 64 characters, verifiable, unforgeable."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from pathlib import Path

import pytest

from bridge import cli
from bridge.core import deeplinks

SECRET = "s3cret"
NOW = 1_800_000_000.0
START_PARAM = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def test_round_trip_and_telegram_limits() -> None:
    for token in ("web-42", "u", "1234121123123", "x" * 26, "客户-7"):
        payload = deeplinks.make(token, 3600, SECRET, now=NOW)
        assert START_PARAM.match(payload), payload
        assert deeplinks.verify(payload, SECRET, now=NOW) == token


def test_the_documented_algorithm() -> None:
    """What a company's backend does, written out independently of the module."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    body = b64(b"web-42.1800003600")
    mac = b64(hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).digest()[:10])
    assert len(mac) == 14
    assert deeplinks.verify(body + mac, SECRET, now=NOW) == "web-42"
    assert deeplinks.sign("web-42", 1_800_003_600, SECRET) == body + mac


def test_forged_tampered_expired_and_unsigned_payloads_are_refused() -> None:
    good = deeplinks.make("web-42", 3600, SECRET, now=NOW)
    other = deeplinks.make("web-43", 3600, SECRET, now=NOW)
    assert deeplinks.verify(good, "another secret", now=NOW) is None
    assert deeplinks.verify(good, None, now=NOW) is None
    assert deeplinks.verify(good, "", now=NOW) is None
    assert deeplinks.verify(other[:-14] + good[-14:], SECRET, now=NOW) is None
    flipped = good[:3] + ("A" if good[3] != "A" else "B") + good[4:]
    assert deeplinks.verify(flipped, SECRET, now=NOW) is None
    assert deeplinks.verify(good, SECRET, now=NOW + 3600) is None  # expired
    for junk in ("", "sales", "a" * 14, "a" * 65, good + "x", good[:-1], "ab.cd" * 4):
        assert deeplinks.verify(junk, SECRET, now=NOW) is None


def test_a_signed_body_that_is_not_a_link_is_refused() -> None:
    def signed(text: bytes) -> str:
        body = base64.urlsafe_b64encode(text).rstrip(b"=").decode()
        return body + deeplinks._mac(SECRET, body)

    for text in (b"no-expiry", b"web-42.soon", b".1800003600", b"tg-5.1800003600", b"\xff.1"):
        assert deeplinks.verify(signed(text), SECRET, now=NOW) is None


def test_tokens_that_cannot_be_linked() -> None:
    with pytest.raises(deeplinks.LinkError, match="room for 26"):
        deeplinks.make("828cw3d9-6a61-4afe-9efe-2c071d0e7cb3", 3600, SECRET, now=NOW)
    with pytest.raises(deeplinks.LinkError, match="bridge's own"):
        deeplinks.make("tg-5", 3600, SECRET, now=NOW)
    with pytest.raises(deeplinks.LinkError):
        deeplinks.make("two words", 3600, SECRET, now=NOW)
    with pytest.raises(deeplinks.LinkError):
        deeplinks.make("web-42", 3600, "", now=NOW)


def test_cli_prints_a_payload_the_bridge_accepts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DEEPLINK_SECRET", SECRET)
    assert cli.main(["deeplink", "--customer-token", "web-42", "--ttl", "1h"]) == 0
    payload = capsys.readouterr().out.strip()
    assert START_PARAM.match(payload) and deeplinks.verify(payload, SECRET) == "web-42"
    assert deeplinks.verify(payload, SECRET, now=NOW * 2) is None

    assert cli.main(["deeplink", "--customer-token", "web-42", "--bot", "@shop_bot"]) == 0
    link = capsys.readouterr().out.strip()
    assert link.startswith("https://t.me/shop_bot?start=")
    assert deeplinks.verify(link.split("start=")[1], SECRET) == "web-42"

    assert cli.main(["deeplink", "--customer-token", "x" * 40]) == 2
    assert "room for 26" in capsys.readouterr().err
    monkeypatch.delenv("DEEPLINK_SECRET")
    assert cli.main(["deeplink", "--customer-token", "web-42"]) == 1
    assert "DEEPLINK_SECRET" in capsys.readouterr().err


def test_cli_reads_the_secret_from_the_config_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv("DEEPLINK_SECRET", raising=False)
    config = tmp_path / "bridge.yaml"
    config.write_text(f"deeplink_secret: {SECRET}\n")
    assert cli.main(["deeplink", "--config", str(config), "--customer-token", "web-42"]) == 0
    assert deeplinks.verify(capsys.readouterr().out.strip(), SECRET) == "web-42"
