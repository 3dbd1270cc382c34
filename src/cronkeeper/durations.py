"""Durations as people write them: ``90``, ``90s``, ``5m``, ``1h30m``, ``2d``; and the instants that
bound a window of history: ISO-8601, or a duration meaning that long ago."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, tzinfo

from cronkeeper.exceptions import ValidationError

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


MAX_SECONDS = 1000 * 365.25 * 86400


def parse_duration(value: str | float | timedelta, field: str) -> timedelta:
    """A non-negative duration from seconds, a timedelta, or text such as ``1h30m``; errors name ``field``."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValidationError(field, "expected a duration such as 30s, 5m or 1h30m")
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value.strip().lower(), field)
    else:
        # JSON and TOML input reaches here unchecked: a list or a table must fail as bad input, not crash.
        raise ValidationError(field, "expected a duration such as 30s, 5m or 1h30m")
    if not math.isfinite(seconds):
        raise ValidationError(field, "a duration must be a finite number")
    if seconds < 0:
        raise ValidationError(field, "a duration cannot be negative")
    if seconds > MAX_SECONDS:
        # Instants are computed from durations (now - 90d, start + every): keep every one a date.
        raise ValidationError(field, "the duration is too long (at most 1000 years)")
    return timedelta(seconds=seconds)


def _parse_text(text: str, field: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    position, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        raise ValidationError(field, f"{text!r} is not a duration; write e.g. 30s, 5m, 1h30m or 2d")
    return total


def format_duration(delta: timedelta) -> str:
    """The shortest text that :func:`parse_duration` reads back as ``delta`` (whole seconds and up)."""
    seconds = delta.total_seconds()
    if seconds != int(seconds):
        return f"{seconds:g}s"
    remaining, parts = int(seconds), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def aware_utc(value: object, field: str) -> datetime:
    """``value`` as a UTC instant; a naive datetime is refused, as guessing its zone (the host's?) would make
    one request mean different instants on different machines."""
    if not isinstance(value, datetime):
        raise ValidationError(field, "must be a datetime with a time zone")
    if value.utcoffset() is None:
        raise ValidationError(field, "must have a time zone (a naive datetime names no instant)")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValidationError(field, "is outside the range of dates") from None


def parse_instant(text: str, field: str, *, naive_zone: tzinfo | None = None) -> datetime:
    """A UTC instant from ISO-8601 text; one without an offset is read in ``naive_zone``, or refused without
    one."""
    instant = _iso(text)
    if instant is None:
        raise ValidationError(field, f"{text!r} is not an ISO-8601 date and time")
    if instant.utcoffset() is None and naive_zone is not None:
        instant = instant.replace(tzinfo=naive_zone)
    return aware_utc(instant, field)


def parse_instant_or_ago(
    text: str, field: str, *, now: datetime, naive_zone: tzinfo | None = None
) -> datetime:
    """An ISO-8601 instant as :func:`parse_instant` reads it, or a duration (``24h``, ``7d``) meaning that
    long before ``now``."""
    if _iso(text) is not None:
        return parse_instant(text, field, naive_zone=naive_zone)
    try:
        ago = parse_duration(text, field)
    except ValidationError:
        raise ValidationError(
            field, f"{text!r} is neither an ISO-8601 date and time nor a duration such as 24h or 7d"
        ) from None
    try:
        return now - ago
    except OverflowError:
        raise ValidationError(field, "goes back before the first representable date") from None


def _iso(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        return None
