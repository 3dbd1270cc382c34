"""APScheduler 3's ``Job`` objects, and how an APScheduler job's options and identity map onto cronkeeper's.

Identity matters more here than in APScheduler: cronkeeper keeps jobs in its database, so the job an
application adds at every start must land on the same stored job each time.  :class:`JobNaming` gives each
callable a reference cronkeeper can store and each job without an ``id`` a stable one (see
:meth:`JobNaming.auto_id`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from cronkeeper.compat.apscheduler.config import NO_LIMIT, JobDefaults, Undefined, grace_seconds, undefined
from cronkeeper.compat.apscheduler.time import datetime_repr, to_datetime
from cronkeeper.compat.apscheduler.triggers import BaseTrigger, DateTrigger, IntervalTrigger
from cronkeeper.exceptions import ValidationError
from cronkeeper.models import CallableTarget, Catchup, JobSpec
from cronkeeper.registry import Registry, ref_of

# cronkeeper's own job options, accepted by add_job and modify_job beside APScheduler's.
EXTRA_OPTIONS = frozenset(
    {
        "timeout",
        "max_retries",
        "retry_base",
        "retry_factor",
        "retry_cap",
        "retry_jitter",
        "isolate",
        "overlap",
        "catchup",
        "description",
        "tags",
        "output_limit",
    }
)
_NOT_IN_ID = re.compile(r"[^A-Za-z0-9._-]+")
_DUNDER = re.compile(r"(?<![^.])__(\w+?)__(?![^.])")
MAX_ID = 128
DEFAULT_GRACE = timedelta(seconds=60)  # cronkeeper's own misfire grace (JobSpec.misfire_grace)


class JobHost(Protocol):
    """What a Job needs of its scheduler (the facade's scheduler classes)."""

    def modify_job(self, job_id: str, jobstore: str | None = None, **changes: Any) -> Job: ...

    def reschedule_job(
        self, job_id: str, jobstore: str | None = None, trigger: object = None, **trigger_args: Any
    ) -> Job: ...

    def pause_job(self, job_id: str, jobstore: str | None = None) -> Job: ...

    def resume_job(self, job_id: str, jobstore: str | None = None) -> Job | None: ...

    def remove_job(self, job_id: str, jobstore: str | None = None) -> None: ...

    def resolve(self, func_ref: str) -> Callable[..., Any]: ...


class Job:
    """A scheduled job as APScheduler shows it; methods act on the stored job and refresh this object."""

    def __init__(
        self,
        scheduler: JobHost,
        *,
        id: str,
        name: str,
        func_ref: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        trigger: BaseTrigger,
        executor: str,
        coalesce: bool,
        max_instances: int,
        misfire_grace_time: float | None,
        next_run_time: datetime | None,
    ) -> None:
        self._scheduler = scheduler
        self.id = id
        self.name = name
        self.func_ref = func_ref
        self.args = args
        self.kwargs = kwargs
        self.trigger = trigger
        self.executor = executor
        self.coalesce = coalesce
        self.max_instances = max_instances
        self.misfire_grace_time = misfire_grace_time
        self.next_run_time = next_run_time

    @property
    def func(self) -> Callable[..., Any]:
        """The callable (imported on first use when this process did not add it)."""
        return self._scheduler.resolve(self.func_ref)

    @property
    def pending(self) -> bool:
        """Always False: cronkeeper stores a job the moment it is added, started or not."""
        return False

    def modify(self, **changes: Any) -> Job:
        return self._refresh(self._scheduler.modify_job(self.id, **changes))

    def reschedule(self, trigger: object, **trigger_args: Any) -> Job:
        return self._refresh(self._scheduler.reschedule_job(self.id, trigger=trigger, **trigger_args))

    def pause(self) -> Job:
        return self._refresh(self._scheduler.pause_job(self.id))

    def resume(self) -> Job:
        return self._refresh(self._scheduler.resume_job(self.id))

    def remove(self) -> None:
        self._scheduler.remove_job(self.id)

    def _refresh(self, other: Job | None) -> Job:
        if other is None:  # resumed past its end: the job is over
            self.next_run_time = None
            return self
        for key, value in vars(other).items():
            setattr(self, key, value)
        return self

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"<Job (id={self.id} name={self.name})>"

    def __str__(self) -> str:
        status = f"next run at: {datetime_repr(self.next_run_time)}" if self.next_run_time else "paused"
        return f"{self.name} (trigger: {self.trigger}, {status})"


class JobNaming:
    """References for callables and ids for jobs added without one, remembered for this scheduler."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._auto: dict[str, int] = {}
        self._id_bases: dict[str, str] = {}  # reference -> what its auto ids start with, where they differ
        self._lock = threading.Lock()

    def ref_for(self, func: Callable[..., Any] | str) -> str:
        """The reference cronkeeper stores: an import path as given (checked by importing it), else the
        callable's ``module:qualname``; callables that share one (lambdas, closures, bound methods of two
        objects) get ``_2``, ``_3``… in the order this scheduler adds them.  A ``functools.partial`` whose own
        arguments are JSON is ``module:qualname.partial_<hash>`` of the function it wraps (see
        :func:`partial_names`)."""
        if isinstance(func, str):
            self._registry.resolve(func)
            return func
        if not callable(func):
            raise ValidationError("func", f"{func!r} is neither callable nor a 'module:function' reference")
        base, id_base = partial_names(func) or (ref_of(func), None)
        # APScheduler keeps every callable added as a job of its own: two lambdas are two jobs.
        ref = self._registry.register(func, base, one_per_callable=True)
        if id_base is not None:
            with self._lock:
                self._id_bases[ref] = id_base
        return ref

    def auto_id(self, ref: str, args: list[Any], kwargs: dict[str, Any]) -> str:
        """The id of a job added without one: the function's ``module.qualname``, plus ``-`` and eight hex
        digits of a SHA-256 of its JSON arguments when it has any; the n-th such job of this scheduler with
        the same function and arguments gets ``-n``.  A ``functools.partial`` is named after the function it
        wraps plus the hash of its own arguments, so ``partial(f, 5)`` gets the id ``add_job(f, args=[5])``
        would.  The trigger is left out on purpose: a schedule changed in code then updates the stored job
        instead of leaving the old one firing."""
        named = self._id_bases.get(ref, ref)
        dotted = _DUNDER.sub(r"\1", named.replace(":", "."))  # __main__.tick -> main.tick
        base = _NOT_IN_ID.sub("", dotted).lstrip("._-") or "job"
        if args or kwargs:
            base = f"{base[: MAX_ID - 20]}-{_arguments_digest(args, kwargs)}"
        base = base[: MAX_ID - 8]
        with self._lock:
            count = self._auto.get(base, 0) + 1
            self._auto[base] = count
        return base if count == 1 else f"{base}-{count}"


def _arguments_digest(args: object, kwargs: object) -> str:
    """Eight hex digits of a SHA-256 of the arguments' JSON (TypeError/ValueError when not JSON)."""
    text = json.dumps([args, kwargs], sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def partial_names(func: object) -> tuple[str, str] | None:
    """For a ``functools.partial`` whose own arguments are JSON-serialisable: its reference,
    ``module:qualname.partial_<hash>`` of the wrapped function (not the function's own reference, which
    another process would import and call without the partial's arguments), and the start of its auto
    ids, ``module:qualname-<hash>``; the hash is the one a job with those arguments gets.  None otherwise
    (other partials are named ``functools:partial``, ``_2``… in the order added)."""
    if not isinstance(func, functools.partial):
        return None
    try:
        digest = _arguments_digest(list(func.args), dict(func.keywords))
    except (TypeError, ValueError):
        return None
    inner = ref_of(func.func)
    return f"{inner}.partial_{digest}", f"{inner}-{digest}"


def callable_name(func: Callable[..., Any] | str, ref: str) -> str:
    """APScheduler's default job name: the callable's qualified name (a method's with its class)."""
    if isinstance(func, str):
        return ref.rpartition(":")[2]
    owner = getattr(func, "__self__", None)
    if owner is not None and hasattr(func, "__name__"):
        cls = owner if isinstance(owner, type) else type(owner)
        return f"{cls.__qualname__}.{func.__name__}"
    name = getattr(func, "__qualname__", None)
    return name if isinstance(name, str) else type(func).__qualname__


def json_arguments(args: object, kwargs: object) -> tuple[list[Any], dict[str, Any]]:
    """The job's arguments as cronkeeper stores them: JSON, never pickled."""
    if args is None:
        args = ()
    if kwargs is None:
        kwargs = {}
    if not isinstance(args, list | tuple):
        raise ValidationError("args", "must be a list or a tuple")
    if not isinstance(kwargs, Mapping) or not all(isinstance(key, str) for key in kwargs):
        raise ValidationError("kwargs", "must be a dict with string keys")
    return _json("args", list(args)), _json("kwargs", dict(kwargs))


def _json(field: str, value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            field, f"must be JSON-serialisable: cronkeeper stores arguments as JSON, never pickled ({exc})"
        ) from None


def policy_options(
    defaults: JobDefaults,
    *,
    coalesce: bool | Undefined,
    max_instances: int | Undefined,
    misfire_grace_time: float | Undefined | None,
) -> dict[str, Any]:
    """cronkeeper's options for APScheduler's coalesce, max_instances and misfire_grace_time, with the
    scheduler's ``job_defaults`` for those not given."""
    return changed_policies(
        coalesce=defaults.coalesce if isinstance(coalesce, Undefined) else coalesce,
        max_instances=defaults.max_instances if isinstance(max_instances, Undefined) else max_instances,
        misfire_grace_time=(
            defaults.misfire_grace_time if isinstance(misfire_grace_time, Undefined) else misfire_grace_time
        ),
    )


def changed_policies(
    *,
    coalesce: object = undefined,
    max_instances: object = undefined,
    misfire_grace_time: object = undefined,
) -> dict[str, Any]:
    """Only the options given: coalesce → ``catchup`` (see :func:`coalesce_catchup`), misfire_grace_time →
    ``misfire_grace`` (None: no limit)."""
    options: dict[str, Any] = {}
    if not isinstance(coalesce, Undefined):
        if not isinstance(coalesce, bool):
            raise ValidationError("coalesce", "must be True or False")
        grace_given = not isinstance(misfire_grace_time, Undefined)
        options["catchup"] = coalesce_catchup(coalesce, grace_given=grace_given)
    if not isinstance(max_instances, Undefined):
        options["max_instances"] = max_instances
    if not isinstance(misfire_grace_time, Undefined):
        valid = misfire_grace_time is None or (
            isinstance(misfire_grace_time, int | float)
            and not isinstance(misfire_grace_time, bool)
            and misfire_grace_time > 0
        )
        if not valid:
            raise ValidationError("misfire_grace_time", "must be a positive number of seconds, or None")
        options["misfire_grace"] = grace_seconds(misfire_grace_time)  # type: ignore[arg-type]
    return options


def coalesce_catchup(coalesce: bool, *, grace_given: bool) -> str:
    """cronkeeper's ``catchup`` for APScheduler's ``coalesce``.  False: "all".  True with a
    ``misfire_grace_time`` given (per job or in ``job_defaults``): "skip", APScheduler's own behaviour (the
    newest due fire runs if it is within the grace, a later one is recorded missed).  True without one:
    "once", one catch-up run after downtime (APScheduler's 1 s default grace would drop nearly every late
    fire; cronkeeper's default grace is 60 s)."""
    if not coalesce:
        return Catchup.ALL.value
    return Catchup.SKIP.value if grace_given else Catchup.ONCE.value


def grace_time_of(grace: timedelta) -> float | None:
    """APScheduler's ``misfire_grace_time`` for a stored grace (whole seconds as an int, as it shows them)."""
    if grace >= NO_LIMIT:
        return None
    seconds = grace.total_seconds()
    return int(seconds) if seconds.is_integer() else seconds


def first_run(
    trigger: BaseTrigger, data: dict[str, Any], next_run_time: object, *, zone: str | None, now: datetime
) -> bool:
    """Apply an explicit ``next_run_time`` (APScheduler's first run regardless of the trigger) to a job's
    cronkeeper ``data``; True when that means a run right now (then on schedule).  A naive one is read in
    ``zone`` (None: the host's local zone)."""
    if next_run_time is None or isinstance(next_run_time, Undefined):
        return False
    when = to_datetime(next_run_time, zone, "next_run_time")
    if isinstance(trigger, DateTrigger):
        data["at"] = max(when, now)  # the date's own instant is replaced, as in APScheduler
        return False
    if isinstance(trigger, IntervalTrigger) and trigger.start_date is None:
        data["start"] = when  # the interval counts from the first run
        return when <= now
    if when <= now:
        return True
    raise ValidationError(
        "next_run_time",
        "a cron job's first fire cannot be moved to a future instant: give the trigger a start_date (it then "
        "fires first at the first cron time after it), or add it with next_run_time=None and resume it later",
    )


def job_edits(
    spec: JobSpec, changes: Mapping[str, Any], *, naming: JobNaming, trigger: BaseTrigger | None
) -> dict[str, Any]:
    """cronkeeper's edit for ``modify_job``'s changes (a new function keeps the arguments, as APScheduler)."""
    target = spec.target
    assert isinstance(target, CallableTarget)
    edits: dict[str, Any] = {key: changes[key] for key in ("name", *EXTRA_OPTIONS) if key in changes}
    if {"func", "args", "kwargs"} & set(changes):
        args, kwargs = json_arguments(changes.get("args", target.args), changes.get("kwargs", target.kwargs))
        edits.update(args=args, kwargs=kwargs, isolate=changes.get("isolate", target.isolate))
    if "func" in changes:
        edits["call"] = naming.ref_for(changes["func"])
    if trigger is not None:
        edits.update(trigger.schedule())
    policies = {
        key: changes[key] for key in ("coalesce", "max_instances", "misfire_grace_time") if key in changes
    }
    edits.update(changed_policies(**policies))
    if edits.get("catchup") == Catchup.ONCE.value or ("catchup" not in edits and "misfire_grace" in edits):
        edits.update(_coalesce_with_grace(spec, edits))
    return edits


def _coalesce_with_grace(spec: JobSpec, edits: Mapping[str, Any]) -> dict[str, Any]:
    """``modify_job``'s coalesce or grace, with the other one as stored: a coalescing job whose grace is not
    cronkeeper's default was given one, so it follows APScheduler's rule (see :func:`coalesce_catchup`)."""
    catchup = edits.get("catchup", spec.catchup.value)
    grace = edits.get("misfire_grace", spec.misfire_grace)
    if catchup == Catchup.ONCE.value and grace != DEFAULT_GRACE:
        return {"catchup": Catchup.SKIP.value}
    return {}
