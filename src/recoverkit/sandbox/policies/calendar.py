"""Calendar helpers for payday-aware timing (local, naive datetimes)."""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta


def last_business_day(year: int, month: int) -> date:
    """The last Monday-to-Friday of a month (public holidays are not modelled)."""
    day = date(year, month, calendar.monthrange(year, month)[1])
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def paydays(start: date, end: date) -> list[date]:
    """The common paydays between ``start`` and ``end`` inclusive: the 1st, the 15th and the
    last business day of each month."""
    found: set[date] = set()
    year, month = start.year, start.month
    while date(year, month, 1) <= end:
        found |= {date(year, month, 1), date(year, month, 15), last_business_day(year, month)}
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return sorted(d for d in found if start <= d <= end)


def next_payday_morning(after: datetime, *, hour: int = 7, horizon_days: int = 62) -> datetime:
    """The first payday at ``hour`` local time strictly after ``after`` (naive local)."""
    for day in paydays(after.date(), after.date() + timedelta(days=horizon_days)):
        candidate = datetime.combine(day, time(hour))
        if candidate > after:
            return candidate
    raise ValueError(f"no payday within {horizon_days} days of {after}")  # pragma: no cover


def next_morning(after: datetime, *, hour: int = 7) -> datetime:
    """The next ``hour``:00 local strictly after ``after`` (naive local)."""
    candidate = datetime.combine(after.date(), time(hour))
    return candidate if candidate > after else candidate + timedelta(days=1)
