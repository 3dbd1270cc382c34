"""Moving jobs out of an APScheduler 3 ``SQLAlchemyJobStore`` table into cronkeeper.

An application that ran APScheduler 3 with a SQLAlchemy job store has its jobs in a table (by default
``apscheduler_jobs``: ``id``, ``next_run_time``, ``job_state``), each ``job_state`` a pickled dict of the
job's options with APScheduler's own trigger object inside.  :func:`read_apscheduler_jobs` reads those rows
into plain :class:`ForeignJob` descriptions and :func:`to_definitions` turns them into cronkeeper job
definitions, with the same translation the APScheduler facade applies to ``add_job`` (its trigger conversion
and option mapping are reused, not repeated), so a job means the same whether it was added through the
facade or imported from the table.

.. warning::

   **Reading the table unpickles it, and unpickling runs code.**  A ``job_state`` value can make
   :func:`pickle.loads` import any module and call any function.  Only import from a database you trust:
   your own application's, written by APScheduler.  Never point this at a table other people can write to.

Reading needs APScheduler 3 importable (``pip install "apscheduler<4"``): the pickles hold its trigger
classes.  The jobs' own functions are *not* imported here (APScheduler stores them as ``module:qualname``
text), but an argument pickled as an instance of one of your classes needs that class importable; a row that
cannot be read or translated is reported with its id and the reason, and never stops the others.

What changes on the way:

- **Arguments become JSON.**  cronkeeper never pickles; a job whose ``args``/``kwargs`` are not JSON (a
  datetime, an object; a bound method, whose object APScheduler pickled as the first argument) is not
  importable, with the reason.
- **Ids** are kept when cronkeeper accepts them (1-128 letters, digits, ``.``, ``_``, ``-``, starting with a
  letter or digit; APScheduler's uuid ids qualify), else become a slug of the id plus 8 hex digits of its
  SHA-256, stable across imports and noted in the job's description.
- **Triggers**: cron, interval and date, converted like the facade converts APScheduler's trigger objects
  (cron ``day_of_week`` 0 is Monday, as in APScheduler; ``year``/``week`` fields and ``day`` with
  ``day_of_week`` are refused with the reason).  Combining (``AndTrigger``/``OrTrigger``) and calendar
  interval triggers have no single cronkeeper schedule and are refused.  An interval keeps APScheduler's
  ``start_date`` as its anchor, so the grid does not move.
- **Options**: ``coalesce``, ``max_instances`` and ``misfire_grace_time`` map as in the facade.  APScheduler
  stores its default grace (1 s) explicitly, so imported jobs keep a 1 s grace and, with ``coalesce``,
  ``catchup="skip"`` (a fire later than the grace is recorded missed, as APScheduler does); ``None`` (no
  limit) becomes a century.  The executor alias is not carried over (a note says so when it is not
  ``default``).
- **Paused** jobs (APScheduler's ``next_run_time`` of None) stay paused.  Fires missed while APScheduler
  was not running are not replayed: an imported job fires from its next fire after the import.
"""

from __future__ import annotations

import hashlib
import pickle
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, LargeBinary, Unicode, column, create_engine, inspect, select
from sqlalchemy import table as sql_table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from cronkeeper.compat.apscheduler.config import JobDefaults
from cronkeeper.compat.apscheduler.jobs import MAX_ID, json_arguments, policy_options
from cronkeeper.compat.apscheduler.triggers import convert_foreign
from cronkeeper.exceptions import CronkeeperError, ValidationError
from cronkeeper.specs import JOB_ID, TEXT_LIMITS

DEFAULT_TABLE = "apscheduler_jobs"
TAG = "apscheduler"
INSTALL_HINT = 'pip install "apscheduler<4"'
_NOT_IN_ID = re.compile(r"[^A-Za-z0-9._-]+")
_HASH_LENGTH = 8
_STATE_KEYS = ("id", "func", "trigger", "args", "kwargs")
# Trigger classes of APScheduler 3 that no single cron, interval or date schedule can stand for.
_UNSUPPORTED_TRIGGERS = {
    "AndTrigger": "a combining trigger (fires when all its triggers agree)",
    "OrTrigger": "a combining trigger (fires when any of its triggers does)",
    "CalendarIntervalTrigger": "a calendar interval trigger (months and years of varying length)",
}


class JobStoreError(CronkeeperError):
    """The job store table cannot be read at all: APScheduler is missing, the URL or table is wrong, or the
    database refused.  (A single unreadable row is reported in its :class:`ForeignJob` instead.)"""


@dataclass(frozen=True, slots=True)
class ForeignJob:
    """One row of APScheduler's table, as plain values.  ``error`` is set (and the other fields left at
    their defaults) when the row could not be unpickled or is not a job APScheduler 3 wrote."""

    id: str
    name: str = ""
    func: str = ""
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    trigger: object = None
    executor: str = "default"
    misfire_grace_time: float | None = None
    coalesce: bool = True
    max_instances: int = 1
    next_run_time: datetime | None = None
    paused: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Definition:
    """A cronkeeper job definition (``job``, for :meth:`JobService.build`) made from APScheduler job
    ``source_id``; ``notes`` say what was adapted on the way (a new id, an executor left behind)."""

    source_id: str
    job: dict[str, Any]
    paused: bool
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NotImportable:
    """An APScheduler job that cannot become a cronkeeper job, and why."""

    source_id: str
    reason: str


@dataclass(slots=True)
class Conversion:
    """What :func:`to_definitions` made of the jobs: definitions, and the jobs left out with the reason."""

    definitions: list[Definition] = field(default_factory=list)
    refused: list[NotImportable] = field(default_factory=list)


# ---- reading the table --------------------------------------------------------------------------------


def read_apscheduler_jobs(
    url: str, *, table: str = DEFAULT_TABLE, schema: str | None = None
) -> list[ForeignJob]:
    """Every job of APScheduler 3's SQLAlchemy job store at ``url`` (any URL SQLAlchemy can open;
    ``postgresql://`` uses psycopg, cronkeeper's driver), ordered by id.

    **This unpickles the table's ``job_state`` column, which can run arbitrary code: only read a database
    you trust (your own application's).**  Raises :class:`JobStoreError` when the table cannot be read at
    all; a row that cannot be unpickled comes back with its ``error`` set.
    """
    _require_apscheduler()
    engine = _open(url)
    try:
        rows = _rows(engine, table, schema)
    finally:
        engine.dispose()
    return [_foreign_job(row_id, blob) for row_id, blob in rows]


def _require_apscheduler() -> None:
    """The pickles hold APScheduler 3's trigger objects: without it (or with APScheduler 4, whose classes
    differ) no row could be read, so say what to install instead of failing on every row."""
    try:
        import apscheduler
    except ImportError:
        raise JobStoreError(
            "reading an APScheduler job store needs APScheduler 3, whose trigger objects its rows hold: "
            + INSTALL_HINT
        ) from None
    version = str(getattr(apscheduler, "__version__", "3"))
    if not version.startswith("3."):
        raise JobStoreError(
            f"found APScheduler {version}; the SQLAlchemyJobStore table is APScheduler 3's: {INSTALL_HINT}"
        )


def _open(url: str) -> Engine:
    """An engine on APScheduler's database.  A SQLite file that does not exist is an error here, where
    SQLite would create an empty one; passwords never appear in messages."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise JobStoreError(f"{url!r} is not a database URL: {exc}") from None
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or not (database.startswith("file:") or Path(database).exists()):
            raise JobStoreError(f"no SQLite database file at {shown}")
    if parsed.drivername == "postgresql":  # as cronkeeper's own databases: psycopg, not psycopg2
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        return create_engine(parsed, hide_parameters=True)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise JobStoreError(f"cannot open {shown}: {exc}") from None


def _rows(engine: Engine, table: str, schema: str | None) -> list[tuple[str, bytes | None]]:
    shown = engine.url.render_as_string(hide_password=True)
    name = f"{schema}.{table}" if schema else table
    jobs = sql_table(table, column("id", Unicode()), column("job_state", LargeBinary()), schema=schema)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(table, schema=schema):
                raise JobStoreError(f"no table {name!r} in {shown} (the job store's tablename?)")
            result = conn.execute(select(jobs.c.id, jobs.c.job_state).order_by(jobs.c.id))
            return [(str(row_id), None if blob is None else bytes(blob)) for row_id, blob in result]
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc  # the driver's message, without SQLAlchemy's links
        raise JobStoreError(f"cannot read {name!r} from {shown}: {reason}") from exc


def _foreign_job(row_id: str, blob: bytes | None) -> ForeignJob:
    """One row, unpickled; any failure (a missing module, a corrupt value) is this row's error only."""
    if not blob:
        return ForeignJob(row_id, error="job_state is empty")
    try:
        state = pickle.loads(blob)
    except Exception as exc:
        return ForeignJob(row_id, error=f"cannot unpickle job_state: {type(exc).__name__}: {exc}")
    if not isinstance(state, dict) or any(key not in state for key in _STATE_KEYS):
        return ForeignJob(row_id, error="job_state is not an APScheduler 3 job")
    if state.get("version", 1) != 1:
        return ForeignJob(row_id, error=f"job_state has version {state['version']!r}; only 1 is known")
    try:
        return _from_state(state)
    except (TypeError, ValueError) as exc:
        return ForeignJob(row_id, error=f"job_state is not an APScheduler 3 job: {exc}")


def _from_state(state: dict[str, Any]) -> ForeignJob:
    """The fields of ``Job.__getstate__`` (APScheduler 3's ``apscheduler/job.py``), version 1."""
    next_run_time = state.get("next_run_time")
    return ForeignJob(
        id=str(state["id"]),
        name=str(state.get("name") or ""),
        func=str(state["func"]),
        args=tuple(state["args"] or ()),
        kwargs=dict(state["kwargs"] or {}),
        trigger=state["trigger"],
        executor=str(state.get("executor") or "default"),
        misfire_grace_time=state.get("misfire_grace_time"),
        coalesce=bool(state.get("coalesce", True)),
        max_instances=state.get("max_instances", 1),
        next_run_time=next_run_time,
        paused=next_run_time is None,  # how APScheduler marks a paused job
    )


# ---- translating ----------------------------------------------------------------------------------------


def to_definitions(jobs: Iterable[ForeignJob], timezone: str, *, now: datetime | None = None) -> Conversion:
    """cronkeeper job definitions for ``jobs``; ``timezone`` is for a trigger without one (APScheduler
    gives every trigger its scheduler's zone, so rarely used).  Unreadable rows, and jobs whose arguments,
    trigger or options cronkeeper cannot take, are returned in ``refused`` with the reason.  Definitions are
    not validated against the database here: :meth:`JobService.build` does that before anything is saved."""
    now = now or datetime.now(UTC)
    conversion = Conversion()
    for job in jobs:
        if job.error is not None:
            conversion.refused.append(NotImportable(job.id, job.error))
            continue
        try:
            conversion.definitions.append(_definition(job, timezone, now))
        except ValidationError as exc:
            conversion.refused.append(NotImportable(job.id, f"{exc.field}: {exc.reason}"))
        except Exception as exc:  # an odd unpickled object must not stop the other jobs
            conversion.refused.append(NotImportable(job.id, f"{type(exc).__name__}: {exc}"))
    return conversion


def _definition(job: ForeignJob, zone: str, now: datetime) -> Definition:
    """One job through the facade's own translation: trigger, JSON arguments, then the policies."""
    trigger = convert_foreign(_supported(job.trigger)).bind(zone, now)
    if _is_bound_method(job):
        raise ValidationError(
            "func",
            f"{job.func} is a method of an object, which APScheduler pickled as the first argument; "
            "cronkeeper calls functions with JSON arguments: schedule a module-level function instead",
        )
    args, kwargs = json_arguments(job.args, job.kwargs)
    policies = policy_options(
        JobDefaults(),
        coalesce=job.coalesce,
        max_instances=job.max_instances,
        misfire_grace_time=job.misfire_grace_time,
    )
    job_id, renamed = cronkeeper_id(job.id)
    data: dict[str, Any] = {
        "id": job_id,
        "name": _name(job),
        "call": job.func,
        "args": args,
        "kwargs": kwargs,
        **trigger.schedule(),
        **policies,
        "tags": [TAG],
    }
    notes: list[str] = []
    if renamed:
        data["description"] = f"APScheduler job id: {job.id}"[: TEXT_LIMITS["description"]]
        notes.append(f"imported as {job_id}: {job.id!r} is not a valid cronkeeper id")
    if job.executor != "default":
        notes.append(
            f"executor {job.executor!r} is not carried over: the job runs in cronkeeper's thread pool "
            "(edit it with isolate=true to run it in a child process)"
        )
    return Definition(job.id, data, job.paused, tuple(notes))


def _supported(trigger: object) -> object:
    """The trigger, unless it is one of APScheduler's that no single cronkeeper schedule can stand for
    (then the reason says what it is, rather than only that it is not supported)."""
    kind = type(trigger).__name__
    if kind in _UNSUPPORTED_TRIGGERS and (type(trigger).__module__ or "").startswith("apscheduler."):
        raise ValidationError("trigger", f"{kind} is {_UNSUPPORTED_TRIGGERS[kind]}: no cronkeeper schedule")
    return trigger


def _is_bound_method(job: ForeignJob) -> bool:
    """APScheduler stores ``obj.method`` as ``module:Class.method`` with ``obj`` prepended to the args."""
    owner = job.func.partition(":")[2].rpartition(".")[0]
    return bool(owner and job.args and type(job.args[0]).__qualname__ == owner)


def _name(job: ForeignJob) -> str:
    name = job.name or job.func.rpartition(":")[2]
    limit = TEXT_LIMITS["name"]
    return name if len(name) <= limit else name[: limit - 1] + "…"


def cronkeeper_id(aps_id: str) -> tuple[str, bool]:
    """The cronkeeper id for an APScheduler id, and whether it had to change: kept when valid, else a slug
    plus 8 hex digits of its SHA-256 (so two ids with the same slug stay apart, and a second import finds
    the job the first one made)."""
    if JOB_ID.fullmatch(aps_id):
        return aps_id, False
    slug = _NOT_IN_ID.sub("-", aps_id).strip("._-")[: MAX_ID - _HASH_LENGTH - 1] or "job"
    digest = hashlib.sha256(aps_id.encode()).hexdigest()[:_HASH_LENGTH]
    return f"{slug}-{digest}", True
