"""Phone numbers compare in E.164 however they were written."""

from __future__ import annotations

import pytest

from bridge.core import phones

SAME = ["+86 188-8888-8888", "8618888888888", "188 8888 8888", "18888888888", 18888888888]


@pytest.mark.parametrize("raw", SAME)
def test_every_spelling_of_a_chinese_mobile_is_one_number(raw: object) -> None:
    assert phones.normalise(raw, "CN") == "+8618888888888"
    assert phones.lookup_keys(raw, "CN")[0] == "+8618888888888"


def test_telegram_contacts_carry_the_country_code_without_plus() -> None:
    assert phones.normalise("8618888888888", "CN", international=True) == "+8618888888888"
    # A Moscow mobile as Telegram sends it, not a Nanchang landline.
    assert phones.normalise("79161234567", "CN", international=True) == "+79161234567"
    assert phones.normalise("79161234567", "CN") == "+8679161234567"
    # ...so a lookup of the bare digits tries both readings, the default region's first.
    assert phones.lookup_keys("79161234567", "CN")[:2] == ["+8679161234567", "+79161234567"]
    # A national number that is not valid internationally falls back to the region.
    assert phones.normalise("13800138000", "CN", international=True) == "+8613800138000"


def test_default_region_decides_national_numbers() -> None:
    assert phones.normalise("8 (916) 123-45-67", "RU") == "+79161234567"
    assert phones.normalise("020 7946 0018", "GB") == "+442079460018"
    assert phones.normalise("0086 188 8888 8888", "CN") == "+8618888888888"


def test_unparsable_numbers_are_kept_as_digits() -> None:
    assert phones.normalise("+999 1", "CN") == "9991"
    assert phones.normalise("ext. 12-34-56-78-90-12-34-56-78", "CN") == "123456789012345678"
    assert phones.normalise("no digits", "CN") is None
    assert phones.lookup_keys("no digits", "CN") == []
    assert phones.normalise("1" * 40, "CN") == "1" * 32  # the column's length


def test_the_region_is_named_in_either_case() -> None:
    assert phones.normalise("8 916 123 45 67", "ru") == "+79161234567"
    assert phones.lookup_keys("8 916 123 45 67", "ru")[0] == "+79161234567"


def test_region_codes_and_masking() -> None:
    assert phones.is_known_region("cn") and not phones.is_known_region("XX")
    assert phones.mask("+86 188 8888 1234") == "…1234"
    assert "8888" not in phones.mask("+8618888881234")
