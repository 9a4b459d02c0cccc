"""The customer's local time from the issuer country, only where that is unambiguous.

A card's issuer country is usually known (from the BIN) when the customer's time zone is not.
For a country whose IANA time zones all have the same UTC offset at a given moment (GB, DE, FR,
most of Europe, JP …) that offset is the local time; for countries spanning several offsets
(US, CA, BR, AU, RU, MX …) it is not, and :func:`country_utc_offset` says ``None``. The zones come
from the IANA ``zone.tab`` shipped with ``tzdata`` and offsets from :mod:`zoneinfo`, so daylight
saving time is applied.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from importlib.resources import files
from zoneinfo import ZoneInfo

__all__ = ["country_utc_offset", "country_zones"]


@cache
def _zone_table() -> dict[str, tuple[str, ...]]:
    text = (files("tzdata.zoneinfo") / "zone.tab").read_text(encoding="utf-8")
    table: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        fields = line.split("\t")
        table.setdefault(fields[0].upper(), []).append(fields[2])
    return {country: tuple(zones) for country, zones in table.items()}


@cache
def country_zones(country: str) -> tuple[ZoneInfo, ...]:
    """The IANA time zones of an ISO 3166 alpha-2 country (empty when unknown)."""
    return tuple(ZoneInfo(name) for name in _zone_table().get(country.strip().upper(), ()))


def country_utc_offset(country: str, when: datetime) -> timedelta | None:
    """The UTC offset of ``country`` at ``when`` (timezone-aware) when all its zones agree."""
    # Offsets change on whole hours (UTC) in every zone the countries we meet use; cache by hour.
    hour = when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return _offset_at_hour(country.strip().upper(), hour)


@lru_cache(maxsize=65_536)
def _offset_at_hour(country: str, when: datetime) -> timedelta | None:
    zones = country_zones(country)
    if not zones:
        return None
    offsets = {when.astimezone(zone).utcoffset() for zone in zones}
    if len(offsets) != 1:
        return None
    return offsets.pop()
