"""Time zones and dates as APScheduler 3 accepts them, turned into what cronkeeper stores.

APScheduler takes a zone as a name, a ``zoneinfo`` zone or a pytz zone, and dates as datetimes, dates or
strings.  cronkeeper keeps an IANA zone name per job and aware instants, so every value is resolved here.  A
naive datetime is read in the zone of the trigger or scheduler (UTC unless configured), never the host's.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronkeeper.exceptions import ValidationError


def zone_name(value: object, field: str = "timezone") -> str:
    """The IANA name of a zone given as a name, a ``ZoneInfo`` (``.key``) or a pytz zone (``.zone``)."""
    name = _name_of(value)
    if name is None:
        raise ValidationError(
            field, f"{value!r} has no IANA name; give one such as 'Europe/Paris' (or a ZoneInfo/pytz zone)"
        )
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(field, f"unknown time zone {name!r}") from None
    return name


def _name_of(value: object) -> str | None:
    if isinstance(value, str):
        return value
    for attribute in ("key", "zone"):  # zoneinfo, pytz
        name = getattr(value, attribute, None)
        if isinstance(name, str) and name:
            return name
    if isinstance(value, tzinfo) and value.utcoffset(None) == timedelta(0) and value.tzname(None) == "UTC":
        return "UTC"
    return None


def optional_zone_name(value: object, field: str = "timezone") -> str | None:
    return None if value is None else zone_name(value, field)


def zone_of(instant: object) -> str | None:
    """The zone name of an aware datetime, when it has one (APScheduler takes a trigger's zone from it)."""
    if isinstance(instant, datetime) and instant.tzinfo is not None:
        return _name_of(instant.tzinfo)
    return None


def to_datetime(value: object, zone: str | None, field: str) -> datetime:
    """An aware datetime from a datetime, a date (midnight) or an ISO string; naive values are in ``zone``
    (None: the host's local zone, where ``datetime.now()`` gives them)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError(
                field, f"{value!r} is not a date and time such as '2026-01-31 09:00'"
            ) from None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time())
    if not isinstance(value, datetime):
        raise ValidationError(field, "must be a datetime, a date or an ISO 8601 string")
    if value.tzinfo is None:
        return value.astimezone() if zone is None else value.replace(tzinfo=ZoneInfo(zone))
    return value


def optional_datetime(value: object, zone: str, field: str) -> datetime | None:
    return None if value is None else to_datetime(value, zone, field)


def datetime_repr(instant: datetime | None) -> str:
    """How APScheduler prints an instant: ``2026-01-01 09:00:00 UTC``."""
    return instant.strftime("%Y-%m-%d %H:%M:%S %Z") if instant is not None else "None"


def in_zone(instant: datetime | None, zone: str) -> datetime | None:
    return None if instant is None else instant.astimezone(ZoneInfo(zone))


def utc(instant: datetime) -> datetime:
    return instant.astimezone(UTC)
