"""What the APScheduler sides share and neither scheduler is part of: the run history table their listeners
write, cronkeeper's SQLite settings for its connections, and printing a result.  It imports no scheduler,
so that APScheduler 3 and 4, each in its own virtualenv, use the one copy."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import Column, Engine, Integer, MetaData, Table, Text, func, select

from bench.figures import BulkResult, FireResult

METADATA = MetaData()
RUNS = Table(
    "runs",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("job_id", Text),
    Column("scheduled_for", Text),
    Column("started_at", Text),
    Column("finished_at", Text),
    Column("status", Text),
)


def set_sqlite_pragmas(dbapi_connection: Any, _connection_record: Any) -> None:
    """Give every new SQLite connection cronkeeper's durability and concurrency settings."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=5000")
    finally:
        cursor.close()


def count_history(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(RUNS)).scalar_one())


def print_result(title: str, result: FireResult | BulkResult) -> None:
    print(title)
    for name, value in asdict(result).items():
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        print(f"  {name:<24}{shown}")
