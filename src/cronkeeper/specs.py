"""The one validation layer: user input (Python keywords, CLI options, TOML tables, JSON bodies) to JobSpec.

Every face passes a plain mapping in the same shape to :func:`build_spec`; the stored form of a job is that
shape again (:func:`spec_to_dict`), so what a user writes, what the database keeps and what ``--json`` prints
agree.  Errors name the field and the reason and nothing is written.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import shlex
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronkeeper.cron import CronExpression
from cronkeeper.durations import parse_duration
from cronkeeper.exceptions import InvalidScheduleError, ValidationError
from cronkeeper.models import (
    CallableTarget,
    Catchup,
    CommandTarget,
    JobSpec,
    Overlap,
    RetryPolicy,
    Target,
)
from cronkeeper.triggers import CronTrigger, DateTrigger, IntervalTrigger, Trigger

E = TypeVar("E", Overlap, Catchup)

JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
CALL_REF = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.<>]*")
SCHEDULE_KEYS = ("cron", "every", "at")
TARGET_KEYS = ("command", "call")
KNOWN_KEYS = frozenset(
    {
        "id",
        "name",
        "description",
        "tags",
        *SCHEDULE_KEYS,
        "seconds",
        "timezone",
        "start",
        "end",
        "jitter",
        *TARGET_KEYS,
        "args",
        "kwargs",
        "isolate",
        "shell",
        "env",
        "cwd",
        "timeout",
        "max_retries",
        "retry_base",
        "retry_factor",
        "retry_cap",
        "retry_jitter",
        "overlap",
        "max_instances",
        "misfire_grace",
        "catchup",
        "output_limit",
    }
)


def build_spec(data: Mapping[str, Any], *, default_timezone: str = "UTC", now: datetime) -> JobSpec:
    """Validate ``data`` and build the job it describes; ``now`` anchors an interval without a ``start``."""
    unknown = sorted(set(data) - KNOWN_KEYS)
    if unknown:
        raise ValidationError(unknown[0], "unknown option")
    for key, value in data.items():
        _check_strings(key, value)
    job_id = _job_id(data.get("id"))
    return JobSpec(
        id=job_id,
        target=_target(data),
        trigger=build_trigger(data, default_timezone=default_timezone, now=now),
        name=_text(data, "name"),
        description=_text(data, "description"),
        tags=_tags(data.get("tags", ())),
        timeout=_optional_duration(data, "timeout", positive=True),
        retry=_retry(data),
        overlap=_choice(data, "overlap", Overlap, Overlap.ALLOW),
        max_instances=_int(data, "max_instances", 1, minimum=1, maximum=10_000),
        # Positive: a zero grace would turn every fire into a misfire (and, with catchup=skip, never run).
        misfire_grace=_optional_duration(data, "misfire_grace", positive=True) or timedelta(seconds=60),
        catchup=_choice(data, "catchup", Catchup, Catchup.ONCE),
        jitter=_optional_duration(data, "jitter") or timedelta(0),
        output_limit=_int(data, "output_limit", 64 * 1024, minimum=0, maximum=64 * 1024 * 1024),
    )


# What may differ between jobs built from one template by :class:`SpecBatch`.
PER_JOB_KEYS = frozenset({"id", "name", "description", "tags", "args", "kwargs"})


@dataclasses.dataclass(frozen=True, slots=True)
class BulkJob:
    """One job of a bulk load: what the store writes, and the validated job it shares its shape with."""

    id: str
    name: str
    stored_json: str
    shape: JobSpec


class SpecBatch:
    """Validates many job definitions that differ only in identity and arguments, sharing the work.

    Bulk loads (100,000 jobs in one call) are mostly a few shapes of job with different ids; full validation
    of each would cost more than writing it.  The first job of each shape goes through :func:`build_spec`;
    the others only have their own fields checked, with the same rules and messages, and their stored JSON
    is the shape's with those fields put in.
    """

    def __init__(self, *, default_timezone: str, now: datetime) -> None:
        self._default_timezone = default_timezone
        self._now = now
        self._shapes: dict[object, tuple[JobSpec, str]] = {}

    def build(self, data: Mapping[str, Any]) -> BulkJob:
        key = _shape_key(data)
        shape = None if key is None else self._shapes.get(key)
        if shape is None:
            spec = build_spec(data, default_timezone=self._default_timezone, now=self._now)
            stored = spec_to_dict(spec)
            shared = json.dumps({k: v for k, v in stored.items() if k not in PER_JOB_KEYS})
            shape = (spec, shared)
            if key is not None:
                self._shapes[key] = shape
        return self._job(data, *shape)

    def _job(self, data: Mapping[str, Any], shape: JobSpec, shared: str) -> BulkJob:
        own: dict[str, Any] = {
            "id": _job_id(data.get("id")),
            "name": _text(data, "name"),
            "description": _text(data, "description"),
            "tags": list(_tags(data.get("tags", ()))),
        }
        if isinstance(shape.target, CallableTarget):
            args, kwargs = _call_arguments(data)
            own.update(args=list(args), kwargs=kwargs)
        else:
            for key in ("args", "kwargs"):
                if data.get(key):
                    raise ValidationError(key, "only applies to call jobs")
        # Both are JSON objects: splice the job's own fields in front of the shared ones.
        return BulkJob(own["id"], own["name"], f"{json.dumps(own)[:-1]}, {shared[1:]}", shape)


def _shape_key(data: Mapping[str, Any]) -> object:
    """What jobs of one shape share, hashable; None when a value cannot be keyed (then no sharing)."""
    shared = frozenset(
        (k, v) for k, v in data.items() if k not in PER_JOB_KEYS and not isinstance(v, list | dict)
    )
    nested = [(k, v) for k, v in data.items() if k not in PER_JOB_KEYS and isinstance(v, list | dict)]
    if not nested:
        return shared
    try:
        return shared, json.dumps(nested, sort_keys=True)
    except (TypeError, ValueError):
        return None


def build_trigger(data: Mapping[str, Any], *, default_timezone: str, now: datetime) -> Trigger:
    """The trigger named by exactly one of ``cron``, ``every`` or ``at`` (used by reschedule too)."""
    given = [key for key in SCHEDULE_KEYS if data.get(key) not in (None, "")]
    if len(given) != 1:
        raise InvalidScheduleError("schedule", "give exactly one of cron, every or at")
    zone = parse_zone(data.get("timezone") or default_timezone)
    start = _instant(data, "start", zone)
    end = _instant(data, "end", zone)
    if start and end and end <= start:
        raise InvalidScheduleError("end", "must be after start")
    kind = given[0]
    if kind != "cron" and data.get("seconds"):
        raise InvalidScheduleError("seconds", "only applies to cron schedules")
    if kind == "at" and (start or end):
        raise InvalidScheduleError("start" if start else "end", "does not apply to a one-off (at) schedule")
    if kind == "cron":
        cron = parse_cron(str(data["cron"]), _bool(data, "seconds"))
        return CronTrigger(cron, zone, start, end)
    if kind == "every":
        every = parse_duration(data["every"], "every")
        if every <= timedelta(0):
            raise InvalidScheduleError("every", "must be longer than zero")
        anchor = start or now.astimezone(UTC)
        _check_first_step(anchor, every)
        return IntervalTrigger(every, anchor, end)
    at = _instant(data, "at", zone)
    assert at is not None
    return DateTrigger(at)


@functools.lru_cache(maxsize=4096)
def parse_cron(expression: str, seconds: bool) -> CronExpression:
    """Validated expressions are immutable, and jobs share a few: parse each once."""
    return CronExpression(expression, seconds=seconds)


def spec_to_dict(spec: JobSpec) -> dict[str, Any]:
    """The user-level form of ``spec``: what :func:`build_spec` reads back to an equal spec."""
    out: dict[str, Any] = {
        "id": spec.id,
        "name": spec.name,
        "description": spec.description,
        "tags": list(spec.tags),
    }
    out.update(_trigger_fields(spec.trigger))
    target = spec.target
    if isinstance(target, CommandTarget):
        out["command"] = target.argv[0] if target.shell else list(target.argv)
        out.update(shell=target.shell, env=dict(target.env), cwd=target.cwd)
    else:
        out.update(
            call=target.ref, args=list(target.args), kwargs=dict(target.kwargs), isolate=target.isolate
        )
    retry = spec.retry
    out.update(
        timeout=None if spec.timeout is None else spec.timeout.total_seconds(),
        max_retries=retry.max_retries,
        retry_base=retry.base.total_seconds(),
        retry_factor=retry.factor,
        retry_cap=retry.cap.total_seconds(),
        retry_jitter=retry.jitter,
        overlap=spec.overlap.value,
        max_instances=spec.max_instances,
        misfire_grace=spec.misfire_grace.total_seconds(),
        catchup=spec.catchup.value,
        jitter=spec.jitter.total_seconds(),
        output_limit=spec.output_limit,
    )
    return out


def _trigger_fields(trigger: Trigger) -> dict[str, Any]:
    if isinstance(trigger, CronTrigger):
        return {
            "cron": trigger.cron.expression,
            "seconds": trigger.cron.seconds,
            "timezone": trigger.timezone.key,
            "start": _iso(trigger.start_at),
            "end": _iso(trigger.end_at),
        }
    if isinstance(trigger, IntervalTrigger):
        return {
            "every": trigger.every.total_seconds(),
            "start": trigger.anchor.isoformat(),
            "end": _iso(trigger.end_at),
        }
    assert isinstance(trigger, DateTrigger)
    return {"at": trigger.at.isoformat()}


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.isoformat()


def _job_id(value: Any) -> str:
    if not isinstance(value, str) or not JOB_ID.fullmatch(value):
        raise ValidationError(
            "id", "must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


def _target(data: Mapping[str, Any]) -> Target:
    given = [key for key in TARGET_KEYS if data.get(key) not in (None, "", [])]
    if len(given) != 1:
        raise ValidationError("target", "give exactly one of command or call")
    if given[0] == "call":
        return _callable_target(data)
    return _command_target(data)


def _callable_target(data: Mapping[str, Any]) -> CallableTarget:
    ref = data["call"]
    if not isinstance(ref, str) or not CALL_REF.fullmatch(ref):
        raise ValidationError("call", "must be an import path such as 'package.module:function'")
    for key in ("shell", "env", "cwd"):
        if data.get(key):
            raise ValidationError(key, "only applies to command jobs")
    args, kwargs = _call_arguments(data)
    return CallableTarget(ref, args, kwargs, _bool(data, "isolate"))


def _call_arguments(data: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    args = data.get("args") or ()
    kwargs = data.get("kwargs") or {}
    if not isinstance(args, list | tuple):
        raise ValidationError("args", "must be a list")
    if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
        raise ValidationError("kwargs", "must be a table with string keys")
    _check_strings("args", args)
    _check_strings("kwargs", kwargs)
    return tuple(args), dict(kwargs)


def _command_target(data: Mapping[str, Any]) -> CommandTarget:
    command = data["command"]
    shell = _bool(data, "shell")
    for key in ("args", "kwargs", "isolate"):
        if data.get(key):
            raise ValidationError(key, "only applies to call jobs")
    if isinstance(command, str):
        try:
            argv = (command,) if shell else tuple(shlex.split(command))
        except ValueError as exc:
            raise ValidationError("command", f"cannot be split into arguments: {exc}") from None
    elif isinstance(command, list | tuple) and all(isinstance(part, str) for part in command):
        if shell:
            raise ValidationError("command", "with shell = true, give the command as one string")
        argv = tuple(command)
    else:
        raise ValidationError("command", "must be a string or a list of strings")
    if not argv or not argv[0]:
        raise ValidationError("command", "is empty")
    env = data.get("env") or {}
    if not isinstance(env, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        raise ValidationError("env", "must be a table of string values")
    cwd = data.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise ValidationError("cwd", "must be a path")
    return CommandTarget(argv, shell, dict(env), cwd)


def _retry(data: Mapping[str, Any]) -> RetryPolicy:
    base = _optional_duration(data, "retry_base", positive=True) or timedelta(seconds=1)
    cap = _optional_duration(data, "retry_cap", positive=True) or timedelta(seconds=30)
    factor = data.get("retry_factor", 2.0)
    jitter = data.get("retry_jitter", 0.1)
    if isinstance(factor, bool) or not isinstance(factor, int | float) or not 1 <= factor <= MAX_RETRY_FACTOR:
        raise ValidationError("retry_factor", f"must be a number from 1 to {MAX_RETRY_FACTOR}")
    if isinstance(jitter, bool) or not isinstance(jitter, int | float) or not 0 <= jitter <= 1:
        raise ValidationError("retry_jitter", "must be a fraction between 0 and 1")
    return RetryPolicy(
        _int(data, "max_retries", 0, minimum=0, maximum=10_000), base, float(factor), cap, float(jitter)
    )


def parse_zone(name: Any) -> ZoneInfo:
    if not isinstance(name, str):
        raise ValidationError("timezone", "must be an IANA time zone name such as 'Europe/Paris'")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("timezone", f"unknown time zone {name!r}") from None


def _check_first_step(anchor: datetime, every: timedelta) -> None:
    """An interval must fire at least once within the dates cronkeeper handles."""
    try:
        first: datetime | None = anchor + every
    except OverflowError:
        first = None
    if first is None or first.year > LAST_YEAR:
        raise InvalidScheduleError("every", f"is too long: it would first fire after the year {LAST_YEAR}")


def _instant(data: Mapping[str, Any], key: str, zone: ZoneInfo) -> datetime | None:
    """An ISO-8601 instant; one without an offset is read in the job's zone, never the host's."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidScheduleError(key, f"{value!r} is not an ISO-8601 date and time") from None
    if not isinstance(value, datetime):
        raise InvalidScheduleError(key, "must be an ISO-8601 date and time")
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    try:
        instant = value.astimezone(UTC)
    except OverflowError:
        raise InvalidScheduleError(key, "is outside the range of dates") from None
    # Schedules add jitter, grace and retry delays to their instants: keep clear of datetime's last year.
    if instant.year > LAST_YEAR:
        raise InvalidScheduleError(key, f"must be before the year {LAST_YEAR + 1}")
    return instant


def _optional_duration(data: Mapping[str, Any], key: str, *, positive: bool = False) -> timedelta | None:
    value = data.get(key)
    if value is None:
        return None
    duration = parse_duration(value, key)
    if positive and duration <= timedelta(0):
        raise ValidationError(key, "must be longer than zero")
    return duration


def _int(data: Mapping[str, Any], key: str, default: int, *, minimum: int, maximum: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(key, "must be a whole number")
    if not minimum <= value <= maximum:
        raise ValidationError(key, f"must be from {minimum} to {maximum}")
    return value


def _bool(data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise ValidationError(key, "must be true or false")
    return value


LAST_YEAR = 9000
MAX_RETRY_FACTOR = 1000

# Longest accepted texts: names and tags are shown in lists, and PostgreSQL enforces the name column's size.
TEXT_LIMITS = {"name": 200, "description": 4000}
MAX_TAGS = 20
MAX_TAG_LENGTH = 50


def _storable(key: str, value: str) -> str:
    """Text every database keeps as given: no NUL (PostgreSQL refuses it) and no lone surrogates (which
    cannot be encoded, so the job could be saved but never read back)."""
    if "\x00" in value:
        raise ValidationError(key, "must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(key, "must be valid Unicode text (it holds a lone surrogate)") from None
    return value


def _check_strings(key: str, value: Any) -> None:
    """Every text inside an option (command words, env values, args, kwargs) must be storable."""
    if isinstance(value, str):
        _storable(key, value)
    elif isinstance(value, Mapping):
        for name, item in value.items():
            _check_strings(key, name)
            _check_strings(key, item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_strings(key, item)


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key) or ""
    if not isinstance(value, str):
        raise ValidationError(key, "must be text")
    limit = TEXT_LIMITS[key]
    if len(value) > limit:
        raise ValidationError(key, f"must be at most {limit} characters")
    return _storable(key, value)


def _tags(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(tag, str) for tag in value):
        raise ValidationError("tags", "must be a list of words")
    if len(value) > MAX_TAGS:
        raise ValidationError("tags", f"at most {MAX_TAGS} tags")
    for tag in value:
        if len(tag) > MAX_TAG_LENGTH:
            raise ValidationError("tags", f"each tag must be at most {MAX_TAG_LENGTH} characters")
        _storable("tags", tag)
    return tuple(value)


def _choice(data: Mapping[str, Any], key: str, enum: type[E], default: E) -> E:
    value = data.get(key, default)
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise ValidationError(key, f"{value!r} is not one of {allowed}") from None
