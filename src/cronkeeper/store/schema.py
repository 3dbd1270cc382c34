"""The tables, as SQLAlchemy Core.  Migrations under ``migrations/`` create exactly this; a test checks that
the two agree, so a column added here without a migration fails CI.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    cast,
    extract,
    func,
    literal_column,
    text,
    type_coerce,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

metadata = MetaData()


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in and out.

    PostgreSQL keeps ``timestamptz``.  SQLite keeps fixed-width text ``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC,
    which sorts and compares like the instants it holds.  Converting it with ``isoformat``/``fromisoformat``
    (C code) instead of SQLAlchemy's generic DateTime processing matters on the claim path, which converts
    every row.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(26))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC instant")
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            # With the offset spelled out, fromisoformat returns the UTC singleton itself: five times
            # faster than ``.replace(tzinfo=UTC)``, which the claim path and the timeline feel.
            return datetime.fromisoformat(value + "+00:00")
        assert isinstance(value, datetime)
        return value.astimezone(UTC)


def seconds_between(dialect: str, start: ColumnElement[Any], end: ColumnElement[Any]) -> ColumnElement[float]:
    """``end - start`` in seconds, to the microsecond, the same on every database (NULL if either is NULL).

    PostgreSQL subtracts its ``timestamptz`` values exactly.  SQLite's date functions keep milliseconds only,
    so there the whole seconds come from ``julianday`` (exact once rounded) and the microseconds from the
    fixed-width text: the figures a report computes from durations then agree across databases."""
    if dialect != "sqlite":
        return cast(extract("epoch", end - start), Float())
    whole_days = func.julianday(func.substr(end, 1, 19)) - func.julianday(func.substr(start, 1, 19))
    whole = func.round(whole_days * 86400)
    micros = cast(func.substr(end, 21, 6), Integer) - cast(func.substr(start, 21, 6), Integer)
    return type_coerce((whole * 1_000_000 + micros) / literal_column("1000000.0"), Float())


ACTIVE_SQL = "status IN ('queued', 'running')"

jobs = Table(
    "ck_jobs",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("name", String(200), nullable=False, server_default=""),
    Column("spec", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("paused", Boolean, nullable=False, server_default=text("false")),
    Column("next_fire_at", UTCDateTime),
    # When the next run is due: the fire plus its jitter.  The column keeps the name it was created with.
    Column("next_run_at", UTCDateTime, key="next_due_at"),
    # Where the job was declared: a kind (api, cli, code, crontab, demo) or a declaration of one
    # ("config /srv/app/cronkeeper.toml", "apscheduler host:pid:id"), whose jobs a new one replaces.
    Column("origin", String(200), nullable=False, server_default="api"),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("created_by", String(200)),
    Column("updated_by", String(200)),
    # The scheduler object (SchedulerBase.instance_id) that alone may claim the job; NULL: any node.
    Column("runs_on", String(120)),
    Index("ix_ck_jobs_next_run_at", "next_due_at"),
)

runs = Table(
    "ck_runs",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("job_id", String(128), nullable=False),
    Column("scheduled_for", UTCDateTime, nullable=False),
    Column("attempt", Integer, nullable=False, server_default="0"),
    Column("parent_run_id", BigInteger),
    Column("trigger_source", String(20), nullable=False),
    Column("triggered_by", String(200)),
    Column("owner", String(64)),
    Column("status", String(20), nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("queued_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("exit_code", Integer),
    Column("output", Text),
    Column("error", Text),
    Column("traceback", Text),
    Column("result", JSON),
    Column("peak_memory_bytes", BigInteger),
    Column("cpu_time", Float),
    Column("cancel_requested", Boolean, nullable=False, server_default=text("false")),
    UniqueConstraint("job_id", "scheduled_for", "attempt", name="uq_ck_runs_fire"),
    Index("ix_ck_runs_job_id_id", "job_id", "id"),
    Index("ix_ck_runs_status_id", "status", "id"),
    # Filtered history (a job's failures; manual runs) without walking every run of the status (0003).
    Index("ix_ck_runs_job_status_id", "job_id", "status", "id"),
    Index("ix_ck_runs_source_id", "trigger_source", "id"),
    # History and figures over a window of every job (0007); a job's window has uq_ck_runs_fire.
    Index("ix_ck_runs_scheduled_for", "scheduled_for"),
    Index(
        "ix_ck_runs_active_job", "job_id", sqlite_where=text(ACTIVE_SQL), postgresql_where=text(ACTIVE_SQL)
    ),
    Index(
        "ix_ck_runs_unowned_due",
        "due_at",
        sqlite_where=text("status = 'queued' AND owner IS NULL"),
        postgresql_where=text("status = 'queued' AND owner IS NULL"),
    ),
    sqlite_autoincrement=True,  # ids of deleted runs are never given to new ones
)

nodes = Table(
    "ck_nodes",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("hostname", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
    Column("stopped_at", UTCDateTime),
)

# ---- access control, audit and the web layer's bookkeeping (migration 0002) --------------------------------

users = Table(
    "ck_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(100), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(10), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("password_changed_at", UTCDateTime, nullable=False),
    # The zone the user reads times in: an IANA name, "job", or NULL for the browser's (migration 0009).
    Column("time_zone", String(64)),
)

tokens = Table(
    "ck_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("role", String(10), nullable=False),
    Column("created_by", String(200)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
)

sessions = Table(
    "ck_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", Integer, nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# Login attempts per account name (as typed, known or not) within the throttle's window: in the database,
# so that the limit holds for every node of a cluster and across restarts.
login_attempts = Table(
    "ck_login_attempts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("name_key", String(200), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_ck_login_attempts_name_at", "name_key", "at"),
    Index("ix_ck_login_attempts_at", "at"),
)

audit_events = Table(
    "ck_audit",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(40), nullable=False),
    Column("object_type", String(20), nullable=False),
    Column("object_id", String(200), nullable=False),
    Column("details", JSON),
    # Where the change came from (an address, "cli", "config PATH"); the column keeps its first name.
    Column("source", String(100), key="via"),
    Index("ix_ck_audit_object", "object_type", "object_id", "id"),
)

idempotency_keys = Table(
    "ck_idempotency",
    metadata,
    Column("actor", String(200), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("job_id", String(128), nullable=False),
    Column("run_id", BigInteger),
    Column("created_at", UTCDateTime, nullable=False, index=True),
)

settings = Table(
    "ck_settings",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

# ---- alerts (migration 0008) ------------------------------------------------------------------------------

# A named Apprise URL.  The URL holds credentials: only the store and the courier read it whole.
channels = Table(
    "ck_channels",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("url", Text, nullable=False),
    Column("origin", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # When a message last went out (or was claimed to go out): one message per channel per grouping window.
    Column("last_sent_at", UTCDateTime),
)

OPEN_INCIDENT_SQL = "closed_at IS NULL"

# A streak of bad final outcomes of one job, until its next success; at most one open per job.
incidents = Table(
    "ck_incidents",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("job_id", String(128), nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    # The runs that opened and last extended it; None for a fire no scheduler started (overdue).
    Column("first_run_id", BigInteger),
    Column("last_run_id", BigInteger),
    Column("failures", Integer, nullable=False),
    Column("alerted", Boolean, nullable=False, server_default=text("false")),
    Column("closed_at", UTCDateTime),
    Column("closed_by_run_id", BigInteger),
    # The last fire a watching node counted as missed, no scheduler having started it (each counts once).
    Column("overdue_for", UTCDateTime),
    Index(
        "uq_ck_incidents_open",
        "job_id",
        unique=True,
        sqlite_where=text(OPEN_INCIDENT_SQL),
        postgresql_where=text(OPEN_INCIDENT_SQL),
    ),
    Index("ix_ck_incidents_job_id_id", "job_id", "id"),
)

# The outbox: one row per alert and channel, written with the outcome it reports, delivered by any node.
alerts = Table(
    "ck_alerts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("kind", String(20), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("job_id", String(128)),
    Column("run_id", BigInteger),
    Column("incident_id", BigInteger),
    # What the message says, captured when the alert is written (the job may change or go before delivery).
    Column("facts", JSON, nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # Not delivered before this instant: a retry's backoff, or the channel's grouping window.
    Column("due_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("owner", String(64)),
    Column("lease_until", UTCDateTime),
    Column("delivered_at", UTCDateTime),
    Column("last_error", Text),
    # Every failed attempt: [{"at": ISO instant, "error": text}, ...], bounded by the retry limit.
    Column("attempt_log", JSON),
    Index("ix_ck_alerts_status_due", "status", "due_at"),
    Index("ix_ck_alerts_run_id", "run_id"),
    sqlite_autoincrement=True,
)
