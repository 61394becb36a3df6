"""Business hours: a weekly timetable in one time zone, minus holidays.

``BusinessHours.is_open(now)`` answers for any aware datetime (naive ones are taken as UTC);
the parsers below turn the routing file's strings into it and raise ``HoursError`` with a
hint an operator can act on.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_ALIASES = {
    **{d: i for i, d in enumerate(DAYS)},
    "monday": 0,
    "tuesday": 1,
    "wednesday": 2,
    "thursday": 3,
    "friday": 4,
    "saturday": 5,
    "sunday": 6,
}
_TIME = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")
MINUTES_PER_DAY = 24 * 60


class HoursError(ValueError):
    """A value the timetable cannot use; ``hint`` says how to write it instead."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def parse_days(spec: str) -> list[int]:
    """``"mon-fri"`` → [0..4]; ``"sat"``; ``"mon,wed"``; ``"fri-mon"`` wraps over Sunday;
    ``"daily"`` is every day."""
    text = spec.strip().lower()
    if text in ("daily", "everyday", "every day", "mon-sun"):
        return list(range(7))
    days: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            first, _, last = (p.strip() for p in part.partition("-"))
            if first not in _DAY_ALIASES or last not in _DAY_ALIASES:
                raise HoursError(f"{spec!r} is not a day range", _days_hint())
            start, end = _DAY_ALIASES[first], _DAY_ALIASES[last]
            span = (end - start) % 7
            days.extend((start + i) % 7 for i in range(span + 1))
        elif part in _DAY_ALIASES:
            days.append(_DAY_ALIASES[part])
        else:
            raise HoursError(f"{spec!r} is not a day or day range", _days_hint())
    return days


def _days_hint() -> str:
    return 'use mon, tue, wed, thu, fri, sat, sun, a range like "mon-fri", a list like "sat,sun"'


def _minutes(value: str, whole: str) -> int:
    match = _TIME.match(value)
    if not match:
        raise HoursError(f"{whole!r} is not a time range", 'write it like "09:00-18:00"')
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise HoursError(f"{value.strip()!r} is not a time of day", "use 00:00 to 24:00")
    return hours * 60 + minutes


def parse_ranges(spec: str) -> tuple[tuple[int, int], ...]:
    """``"09:00-12:00,13:00-18:00"`` → ((540, 720), (780, 1080)) in minutes of the day;
    ``"closed"`` → ()."""
    text = spec.strip().lower()
    if text in ("closed", "off", "none", ""):
        return ()
    ranges: list[tuple[int, int]] = []
    for part in text.split(","):
        start_text, sep, end_text = part.partition("-")
        if not sep:
            raise HoursError(f"{part.strip()!r} is not a time range", 'write "09:00-18:00"')
        start, end = _minutes(start_text, part.strip()), _minutes(end_text, part.strip())
        if end <= start:
            raise HoursError(
                f"{part.strip()!r} ends before it starts",
                'a range cannot cross midnight; split it: "fri": "22:00-24:00", '
                '"sat": "00:00-02:00"',
            )
        ranges.append((start, end))
    ranges.sort()
    for (_, end), (start, _) in itertools.pairwise(ranges):
        if start < end:
            raise HoursError(f"{spec!r} has overlapping ranges", "make the ranges not overlap")
    return tuple(ranges)


def parse_holiday(value: object) -> list[dt.date]:
    """A date (``2026-10-01``) or an inclusive range ``"2026-10-01..2026-10-07"``."""
    if isinstance(value, dt.datetime):
        return [value.date()]
    if isinstance(value, dt.date):
        return [value]
    text = str(value).strip()
    first, sep, last = text.partition("..")
    try:
        start = dt.date.fromisoformat(first.strip())
        end = dt.date.fromisoformat(last.strip()) if sep else start
    except ValueError:
        raise HoursError(
            f"{text!r} is not a date", 'write dates as 2026-10-01 or "2026-10-01..2026-10-07"'
        ) from None
    if end < start:
        raise HoursError(f"{text!r} ends before it starts", "put the earlier date first")
    if (end - start).days > 366:
        raise HoursError(f"{text!r} is longer than a year", "check the years")
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def format_minutes(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class BusinessHours:
    """When agents work.  ``weekly[weekday]`` holds (start, end) minutes; Monday is 0."""

    timezone: ZoneInfo
    weekly: tuple[tuple[tuple[int, int], ...], ...] = field(default=((),) * 7)
    holidays: frozenset[dt.date] = frozenset()
    outside: str = "leave_message"  # leave_message | robot | agent | route

    def local(self, now: dt.datetime) -> dt.datetime:
        if now.tzinfo is None:
            now = now.replace(tzinfo=dt.UTC)
        return now.astimezone(self.timezone)

    def is_open(self, now: dt.datetime) -> bool:
        local = self.local(now)
        if local.date() in self.holidays:
            return False
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.weekly[local.weekday()])

    def next_open(self, now: dt.datetime) -> dt.datetime | None:
        """The next moment the hours open (local time), or None if they never do."""
        local = self.local(now)
        minute = local.hour * 60 + local.minute
        for offset in range(0, 400):
            day = local.date() + dt.timedelta(days=offset)
            if day in self.holidays:
                continue
            for start, _ in self.weekly[day.weekday()]:
                if offset == 0 and start <= minute:
                    continue
                naive = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=start)
                return naive.replace(tzinfo=self.timezone)
        return None

    def describe(self) -> dict[str, object]:
        weekly: dict[str, str] = {}
        for index, ranges in enumerate(self.weekly):
            weekly[DAYS[index]] = (
                ",".join(f"{format_minutes(s)}-{format_minutes(e)}" for s, e in ranges) or "closed"
            )
        return {
            "timezone": self.timezone.key,
            "weekly": weekly,
            "holidays": sorted(d.isoformat() for d in self.holidays),
            "outside": self.outside,
        }
