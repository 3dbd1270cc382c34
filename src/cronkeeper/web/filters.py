"""Jinja filters: instants, durations and sizes as people read them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jinja2 import Environment

from cronkeeper.models import exit_code_text


def instant(value: datetime | None) -> str:
    """``2026-11-23 14:05:03 UTC``: one zone everywhere on the page, so rows compare at a glance."""
    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def seconds(value: float | timedelta | None) -> str:
    """``0.042 s``, ``3.2 s``, ``4 min 10 s``, ``2 h 5 min``."""
    if value is None:
        return "—"
    total = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if total < 10:
        return f"{total:.3f} s" if total < 1 else f"{total:.1f} s"
    whole = round(total)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s" if whole >= 60 else f"{whole} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def relative(value: datetime | None, now: datetime) -> str:
    """``in 4 min`` or ``12 s ago``."""
    if value is None:
        return "—"
    delta = (value - now).total_seconds()
    text = seconds(abs(delta)) if abs(delta) >= 1 else "now"
    if text == "now":
        return text
    return f"in {text}" if delta > 0 else f"{text} ago"


def size(value: int | None) -> str:
    if value is None:
        return "—"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GiB"


def exit_code(value: int | None) -> str:
    return "—" if value is None else exit_code_text(value)


def install_filters(env: Environment) -> None:
    env.filters.update(instant=instant, seconds=seconds, relative=relative, size=size, exit_code=exit_code)
