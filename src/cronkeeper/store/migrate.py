"""Schema upgrades through Alembic, run from code so that ``cronkeeper db upgrade`` and a starting scheduler
share one path.  On PostgreSQL an advisory lock makes concurrent upgrades from several nodes wait in turn.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError
from alembic.util import CommandError
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from cronkeeper.exceptions import StoreError

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"
_ADVISORY_LOCK_KEY = 7_345_210_981  # arbitrary, constant: "cronkeeper schema"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest migration shipped with this version of cronkeeper."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def known_revision(revision: str) -> bool:
    """Whether ``revision`` is one of this version's migrations (a database from a newer version is not)."""
    try:
        return ScriptDirectory.from_config(_config()).get_revision(revision) is not None
    except (ResolutionError, CommandError):
        return False


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database.

    Read straight from Alembic's table: asking Alembic itself logs its set-up at INFO on every open, which
    would be noise in the logs of every application that opens a scheduler.
    """
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(VERSION_TABLE):
                return None
            revision = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open the database {_safe(engine)}: {_reason(exc)}") from exc
    return None if revision is None else str(revision)


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision; a no-op when it is there already."""
    if current_revision(engine) == head_revision():
        return
    config = _config()
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot upgrade the database {_safe(engine)}: {_reason(exc)}") from exc


def _reason(exc: SQLAlchemyError) -> object:
    """The driver's own message, without SQLAlchemy's statement and background link."""
    return getattr(exc, "orig", None) or exc


def _safe(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
