"""Printing: JSON for tools, Rich tables for people."""

from __future__ import annotations

import json
import sys
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


def table(*columns: str) -> Table:
    out = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in columns:
        out.add_column(column, overflow="fold")
    return out
