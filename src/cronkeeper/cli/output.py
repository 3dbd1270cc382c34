"""Printing: JSON for tools, Rich tables for people."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table

# Piped output is not wrapped at 80 columns, so grep and awk see one row per line.
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 1000)


def print_json(data: Any) -> None:
    """One JSON document on standard output and nothing else, so other tools can parse it."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def when(instant: datetime | None) -> str:
    """An instant for people: UTC, to the second."""
    return "-" if instant is None else instant.isoformat(timespec="seconds")


def seconds(value: float | None) -> str:
    """A duration for people, to the millisecond."""
    return "-" if value is None else f"{value:.3f}s"


def table(*columns: str) -> Table:
    out = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in columns:
        out.add_column(column, overflow="fold")
    return out


def import_summary(actions: Iterable[str], not_imported: int, *, dry_run: bool) -> None:
    """The last line of an import (crontab, APScheduler table): what it did, or would do, to how many jobs."""
    counts = Counter(actions)
    verb, update = ("would add", "would update") if dry_run else ("added", "updated")
    click.echo(
        f"{verb} {counts['add']}, {update} {counts['update']}, unchanged {counts['unchanged']}, "
        f"not imported {not_imported}",
        err=True,
    )
