"""The options APScheduler 3's schedulers take (``gconfig`` and keywords), read into cronkeeper's settings.

Every option either means something here or is refused with an error naming it: nothing is ignored
silently.  ``jobstores`` is the one exception by design, and it warns: cronkeeper keeps jobs in its own
tables.  Executor and job store *objects* of APScheduler itself are accepted too, so code that still builds
``apscheduler.executors.pool.ThreadPoolExecutor(20)`` keeps working.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cronkeeper.clock import Clock
from cronkeeper.compat.apscheduler.time import zone_name
from cronkeeper.exceptions import ValidationError
from cronkeeper.scheduler import DEFAULT_DB
from cronkeeper.settings import SchedulerSettings

PREFIX = "apscheduler."
COMMON_OPTIONS = frozenset(
    {
        "jobstores",
        "executors",
        "job_defaults",
        "timezone",
        "logger",
        "jobstore_retry_interval",
        "db",
        "clock",
        "settings",
        "migrate",
    }
)
THREAD_TYPES = frozenset({"threadpool", "debug", "asyncio"})
PROCESS_TYPES = frozenset({"processpool"})


class ThreadPoolExecutor:
    """Stands for APScheduler's thread pool: its ``max_workers`` becomes cronkeeper's worker count."""

    def __init__(self, max_workers: int = 10, pool_kwargs: Mapping[str, Any] | None = None) -> None:
        self.max_workers = max_workers


class ProcessPoolExecutor:
    """Refused by the schedulers: cronkeeper never pickles jobs.  Run a job in a child process with
    ``add_job(..., isolate=True)`` instead (its timeout can then kill it)."""

    def __init__(self, max_workers: int = 10, pool_kwargs: Mapping[str, Any] | None = None) -> None:
        self.max_workers = max_workers


class AsyncIOExecutor:
    """Coroutine jobs run on the scheduler's event loop, plain functions in its thread pool."""


class MemoryJobStore:
    """Accepted with a warning: jobs live in cronkeeper's database, not in memory."""


class SQLAlchemyJobStore:
    """Accepted with a warning; its ``url`` is the database cronkeeper uses when ``db`` is not given."""

    def __init__(self, url: str | None = None, engine: Any = None, **options: Any) -> None:
        self.url = url
        self.engine = engine


class Undefined:
    """The value of an option that was not given (APScheduler's ``undefined``), as opposed to None."""

    def __repr__(self) -> str:
        return "undefined"


undefined = Undefined()


@dataclass(frozen=True, slots=True)
class JobDefaults:
    """``job_defaults``; without a ``misfire_grace_time`` cronkeeper's own grace (60 s) applies."""

    coalesce: bool = True
    max_instances: int = 1
    misfire_grace_time: float | Undefined | None = undefined


@dataclass(frozen=True, slots=True)
class FacadeConfig:
    db: str = DEFAULT_DB
    timezone: str = "UTC"
    timezone_given: bool = False  # else a naive next_run_time is the host's wall time (datetime.now())
    clock: Clock | None = None
    settings: SchedulerSettings | None = None
    migrate: bool = True
    job_defaults: JobDefaults = JobDefaults()
    executors: frozenset[str] = frozenset({"default"})
    jobstores: frozenset[str] = frozenset({"default"})
    # A persistent job store was configured: jobs the program stops adding are kept, as that store would.
    keeps_undeclared: bool = False
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("cronkeeper.compat.apscheduler"))
    event_loop: asyncio.AbstractEventLoop | None = None


def read_config(
    gconfig: Mapping[str, Any] | None, options: Mapping[str, Any], *, extra: frozenset[str], owner: str
) -> FacadeConfig:
    """Read the options of scheduler class ``owner`` (which also takes ``extra`` ones)."""
    config = _nested(gconfig or {})
    config.update(options)
    unknown = sorted(set(config) - COMMON_OPTIONS - extra)
    if unknown:
        raise ValidationError(unknown[0], f"unknown option for {owner}")
    _check_daemon(config)
    workers = _executors(config.get("executors") or {})
    store_url = _jobstores(config.get("jobstores") or {})
    return FacadeConfig(
        db=_db(config.get("db"), store_url),
        timezone=zone_name(config["timezone"]) if config.get("timezone") is not None else "UTC",
        timezone_given=config.get("timezone") is not None,
        clock=config.get("clock"),
        settings=_settings(config, workers),
        migrate=bool(config.get("migrate", True)),
        job_defaults=_job_defaults(config.get("job_defaults") or {}),
        executors=frozenset({"default", *(config.get("executors") or {})}),
        jobstores=frozenset({"default", *(config.get("jobstores") or {})}),
        keeps_undeclared=_persistent(config.get("jobstores") or {}),
        logger=_logger(config.get("logger")),
        event_loop=config.get("event_loop"),
    )


def _nested(gconfig: Mapping[str, Any]) -> dict[str, Any]:
    """APScheduler's global configuration: only the ``apscheduler.``-prefixed keys, as APScheduler reads it
    (the rest of an application's settings is left alone), dotted keys nested (``job_defaults.coalesce`` →
    ``{"job_defaults": {"coalesce": ...}}``)."""
    config: dict[str, Any] = {}
    for key, value in gconfig.items():
        if not isinstance(key, str) or not key.startswith(PREFIX):
            continue
        parts = key.removeprefix(PREFIX).split(".")
        parent = config
        for part in parts[:-1]:
            parent = parent.setdefault(part, {})
        parent[parts[-1]] = value
    return config


def _check_daemon(config: Mapping[str, Any]) -> None:
    if "daemon" in config and not _as_bool(config["daemon"], "daemon"):
        raise ValidationError(
            "daemon", "cronkeeper's threads are always daemon threads; keep the process alive yourself"
        )


def _executors(executors: Mapping[str, Any]) -> int | None:
    """Check the executors; the default one's ``max_workers``, if it says."""
    workers = None
    for alias, executor in executors.items():
        kind, max_workers = executor_kind(alias, executor)
        if kind in PROCESS_TYPES:
            raise ValidationError(
                f"executors[{alias!r}]",
                "cronkeeper has no process pool (jobs are never pickled); pass isolate=True to add_job "
                "to run a job in a child process, which its timeout can also kill",
            )
        check_pool_alias(alias, max_workers)
        if alias == "default" and max_workers is not None:
            workers = _as_int(max_workers, f"executors[{alias!r}].max_workers", minimum=1)
    return workers


def check_pool_alias(alias: str, max_workers: Any) -> None:
    """Refuse a pool size for an executor other than the default: cronkeeper runs every job in one pool, so
    the limit of a second pool (often 1, to keep jobs from running together) could not be honoured."""
    if alias != "default" and max_workers is not None:
        raise ValidationError(
            f"executors[{alias!r}]",
            f"cronkeeper has one worker pool, so max_workers={max_workers!r} of a second executor cannot be "
            "honoured; drop it and limit the jobs themselves (max_instances, overlap='forbid'), or size "
            "the 'default' executor",
        )


def executor_kind(alias: str, executor: Any) -> tuple[str, Any]:
    if isinstance(executor, Mapping):
        kind = str(executor.get("type") or executor.get("class") or "").rpartition(":")[2]
        max_workers = executor.get("max_workers")
    else:
        kind = type(executor).__name__
        max_workers = getattr(executor, "max_workers", None) or getattr(
            getattr(executor, "_pool", None), "_max_workers", None
        )
    kinds = {
        "ThreadPoolExecutor": "threadpool",
        "ProcessPoolExecutor": "processpool",
        "AsyncIOExecutor": "asyncio",
        "DebugExecutor": "debug",
    }
    kind = kinds.get(kind, kind)
    if kind not in THREAD_TYPES | PROCESS_TYPES:
        raise ValidationError(f"executors[{alias!r}]", f"unsupported executor {kind or executor!r}")
    return kind, max_workers


def _jobstores(jobstores: Mapping[str, Any]) -> str | None:
    """Warn that job stores are not used; the default one's database URL, if it names one."""
    if not jobstores:
        return None
    warnings.warn(
        "jobstores are ignored: cronkeeper keeps jobs and their run history in its own tables of its "
        "database (the 'db' option; else a SQLAlchemyJobStore's url; else sqlite:///cronkeeper.db)",
        UserWarning,
        stacklevel=user_stacklevel(),
    )
    return store_url(jobstores.get("default"))


def _persistent(jobstores: Mapping[str, Any]) -> bool:
    """Whether the default job store was one that outlives the program (anything but a memory store)."""
    store = jobstores.get("default")
    if store is None:
        return False
    if isinstance(store, Mapping):
        kind = str(store.get("type") or store.get("class") or "")
    else:
        kind = type(store).__name__
    return "memory" not in kind.lower()


def user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside this package (the user's line),
    however many of the facade's own constructors lie between."""
    package = os.path.dirname(__file__)
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def store_url(store: Any) -> str | None:
    if isinstance(store, Mapping):
        kind = str(store.get("type") or store.get("class") or "")
        return str(store["url"]) if "sqlalchemy" in kind.lower() and store.get("url") else None
    if type(store).__name__ != "SQLAlchemyJobStore":
        return None
    url = getattr(store, "url", None)
    if url:
        return str(url)
    engine_url = getattr(getattr(store, "engine", None), "url", None)
    render = getattr(engine_url, "render_as_string", None)
    return str(render(hide_password=False)) if render is not None else None


def _db(db: Any, store_url: str | None) -> str:
    if db is None:
        return store_url or DEFAULT_DB
    if not isinstance(db, str):
        raise ValidationError("db", "must be a database URL such as 'sqlite:///app.db'")
    return db


def _settings(config: Mapping[str, Any], workers: int | None) -> SchedulerSettings | None:
    settings = config.get("settings")
    if settings is not None and not isinstance(settings, SchedulerSettings):
        raise ValidationError("settings", "must be a cronkeeper SchedulerSettings")
    changes: dict[str, Any] = {}
    if workers is not None:
        changes["workers"] = workers
    if config.get("jobstore_retry_interval") is not None:
        seconds = config["jobstore_retry_interval"]
        changes["retry_store_after"] = float(_as_number(seconds, "jobstore_retry_interval"))
    if not changes:
        return settings
    return dataclasses.replace(settings or SchedulerSettings(), **changes)


def _job_defaults(values: Mapping[str, Any]) -> JobDefaults:
    unknown = sorted(set(values) - {"coalesce", "max_instances", "misfire_grace_time"})
    if unknown:
        raise ValidationError(f"job_defaults.{unknown[0]}", "unknown job default")
    defaults = JobDefaults()
    if "coalesce" in values:
        defaults = dataclasses.replace(
            defaults, coalesce=_as_bool(values["coalesce"], "job_defaults.coalesce")
        )
    if "max_instances" in values:
        count = _as_int(values["max_instances"], "job_defaults.max_instances", minimum=1)
        defaults = dataclasses.replace(defaults, max_instances=count)
    if "misfire_grace_time" in values:
        grace = values["misfire_grace_time"]
        if grace is not None:
            grace = _as_number(grace, "job_defaults.misfire_grace_time")
        defaults = dataclasses.replace(defaults, misfire_grace_time=grace)
    return defaults


def _logger(value: Any) -> logging.Logger:
    if value is None:
        return logging.getLogger("cronkeeper.compat.apscheduler")
    if isinstance(value, logging.Logger):
        return value
    if isinstance(value, str):
        return logging.getLogger(value)
    raise ValidationError("logger", "must be a logging.Logger or a logger name")


def _as_bool(value: Any, name: str) -> bool:
    """As APScheduler's ``asbool``: configuration files give booleans as text."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "yes", "on", "y", "t", "1"):
            return True
        if text in ("false", "no", "off", "n", "f", "0"):
            return False
        raise ValidationError(name, f"{value!r} is not true or false")
    return bool(value)


def _as_int(value: Any, name: str, *, minimum: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError(name, f"{value!r} is not a whole number") from None
    if number < minimum:
        raise ValidationError(name, f"must be at least {minimum}")
    return number


def _as_number(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationError(name, f"{value!r} is not a number of seconds") from None
    if number <= 0:
        raise ValidationError(name, "must be more than 0 seconds")
    return number


def grace_seconds(value: float | None) -> timedelta:
    """cronkeeper's ``misfire_grace`` for APScheduler's ``misfire_grace_time`` (None: no limit, as long as
    a century, which no schedule outlives)."""
    if value is None:
        return NO_LIMIT
    return timedelta(seconds=value)


NO_LIMIT = timedelta(days=36_525)
