"""The zone a dashboard page shows instants in.

A user's own choice comes first (kept with the account: an IANA name, or each job's own zone); else the
browser's zone, which the page's script reports in a cookie; else UTC.  The cookie is the browser's word and
is checked like any input: a name that is not a known zone is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request

from cronkeeper.models import JOB_ZONE

ZONE_COOKIE = "ck_zone"
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+\-/]{1,64}")


@dataclass(frozen=True, slots=True)
class ReadingZone:
    """The page's zone; ``per_job`` where the reader asked for each job's own zone (the page's zone is then
    UTC for instants of no job); the reader's stored ``choice`` and the ``browser``'s zone, for the switch."""

    zone: tzinfo
    per_job: bool
    choice: str | None
    browser: str | None


def reading_zone(request: Request, choice: str | None) -> ReadingZone:
    browser = known_zone(request.cookies.get(ZONE_COOKIE))
    if choice == JOB_ZONE:
        return ReadingZone(UTC, True, choice, browser)
    chosen = known_zone(choice) if choice else None
    if chosen is not None:
        return ReadingZone(ZoneInfo(chosen), False, choice, browser)
    return ReadingZone(ZoneInfo(browser) if browser else UTC, False, None, browser)


def known_zone(name: str | None) -> str | None:
    """``name`` if it is a zone this machine knows, else None."""
    if not name or not _ZONE_NAME.fullmatch(name):
        return None
    try:
        return ZoneInfo(name).key
    except (ZoneInfoNotFoundError, ValueError):
        return None
