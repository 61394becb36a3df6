"""Phone numbers in one spelling: E.164 (``+8618888888888``), so that the number a Telegram
user shared and the number Udesk's call center asks about compare equal however each was
written (``+86 188-8888-8888``, ``8618888888888``, ``188 8888 8888``, ``18888888888``).

A number without ``+`` is ambiguous: ``79161234567`` is a Moscow mobile to Telegram (which
sends international numbers without the plus) but a Nanchang landline to a Chinese call
center.  So storing and looking up differ a little:

- ``normalise`` gives the one spelling to store: a valid reading first (for a Telegram
  contact the international one, ``+`` prepended; otherwise the one in
  ``PHONE_DEFAULT_REGION``), then a merely possible one; a number that parses as neither is
  kept as its digits alone.
- ``lookup_keys`` gives every spelling a stored number could have for the same input, the
  most likely first; a lookup matches any of them.
"""

from __future__ import annotations

import re

import phonenumbers

DEFAULT_REGION = "CN"
MAX_LENGTH = 32  # customers.phone


def is_known_region(region: str) -> bool:
    return region.upper() in phonenumbers.SUPPORTED_REGIONS


def digits_of(raw: object) -> str:
    return re.sub(r"\D", "", str(raw))[:MAX_LENGTH]


def _parse(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None


def _readings(raw: object, region: str, *, international: bool) -> list[phonenumbers.PhoneNumber]:
    """The ways to read ``raw``, preferred first."""
    text = str(raw).strip()
    digits = digits_of(text)
    if not digits:
        return []
    if text.startswith("+"):
        number = _parse(text, None)
        return [number] if number is not None else []
    with_plus = _parse("+" + digits, None)
    national = _parse(text, region)
    ordered = [with_plus, national] if international else [national, with_plus]
    return [n for n in ordered if n is not None]


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise(raw: object, region: str, *, international: bool = False) -> str | None:
    """The spelling to store: E.164, or the digits alone when the number does not parse;
    None when there are no digits at all.  ``international``: the number is known to carry
    its country code even without ``+`` (Telegram contacts)."""
    digits = digits_of(raw)
    if not digits:
        return None
    readings = _readings(raw, region.upper(), international=international)
    for check in (phonenumbers.is_valid_number, phonenumbers.is_possible_number):
        for number in readings:
            if check(number):
                return _e164(number)[:MAX_LENGTH]
    return digits


def lookup_keys(raw: object, region: str) -> list[str]:
    """Every stored spelling that may be this number, the most likely first: valid readings
    (the default region's, then the international one), merely possible ones, then the bare
    digits.  Both of ``normalise``'s answers for ``raw`` are among them."""
    keys: list[str] = []
    readings = _readings(raw, region.upper(), international=False)
    for check in (phonenumbers.is_valid_number, phonenumbers.is_possible_number):
        for number in readings:
            key = _e164(number)[:MAX_LENGTH]
            if key not in keys and check(number):
                keys.append(key)
    digits = digits_of(raw)
    if digits and digits not in keys:
        keys.append(digits)
    return keys


def mask(raw: object) -> str:
    """A number fit for a log line: the last four digits only."""
    digits = digits_of(raw)
    return f"…{digits[-4:]}" if len(digits) > 4 else "…"
