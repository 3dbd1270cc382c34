"""Opening a database: SQLAlchemy engines tuned for a scheduler's access pattern.

SQLite gets WAL (readers never block the writer), a busy timeout (writers queue instead of failing) and
``BEGIN IMMEDIATE`` for write transactions, so a claim takes the write lock before it reads and two processes
on one file can never both see a job as due.  Read-only work opts out
with ``execution_options(ck_read=True)``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import SQLAlchemyError

from cronkeeper.exceptions import StoreError, ValidationError

BUSY_TIMEOUT_MS = 30_000


def open_engine(url: str | Path) -> Engine:
    """An engine for ``url`` (``sqlite:///path.db`` or ``postgresql://…``, or the path of a SQLite file);
    other databases are refused."""
    try:
        parsed = database_url(url)
    except Exception as exc:
        raise ValidationError("db", f"{str(url)!r} is not a database URL: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=5, hide_parameters=True)
    raise ValidationError("db", f"unsupported database {backend!r}; use sqlite:/// or postgresql://")


def database_url(url: str | Path) -> URL:
    """A URL, or a SQLite file's path made a URL without parsing it (so that ``?`` or ``%`` in a directory
    name stay part of the path)."""
    return URL.create("sqlite", database=str(url)) if isinstance(url, Path) else make_url(url)


def _sqlite_engine(url: URL) -> Engine:
    database = url.database
    if not database or database == ":memory:":
        raise ValidationError("db", "an in-memory SQLite database cannot be shared; give a file path")
    # hide_parameters: a database error must not copy job output or arguments (secrets, maybe) into logs.
    engine = create_engine(
        url,
        hide_parameters=True,
        connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
    )
    event.listen(engine, "connect", _configure_sqlite)
    event.listen(engine, "begin", _begin_sqlite)
    return engine


def _configure_sqlite(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself instead of pysqlite's implicit, deferred BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def _begin_sqlite(connection: Connection) -> None:
    read_only = connection.get_execution_options().get("ck_read", False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """One write transaction; a database failure becomes a StoreError (domain errors pass through)."""
    try:
        with engine.begin() as conn:
            yield conn
    except SQLAlchemyError as exc:
        raise StoreError(f"database write failed: {exc}") from exc


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads only (on SQLite it takes no write lock)."""
    try:
        with engine.connect() as conn:
            yield conn.execution_options(ck_read=True)
    except SQLAlchemyError as exc:
        raise StoreError(f"database read failed: {exc}") from exc
