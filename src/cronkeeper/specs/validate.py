"""Validation: user input (Python keywords, CLI options, TOML tables, JSON bodies) to a JobSpec.

Errors name the field and the reason.  Each rule is here once; the bulk loader (:mod:`.batch`) reuses the
per-field checks, and the stored form (:mod:`.stored`) is the same shape of mapping.
"""

from __future__ import annotations

import functools
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
    AlertKind,
    CallableTarget,
    Catchup,
    CheckinTarget,
    CommandTarget,
    JobSpec,
    LongRunning,
    NotifyOptions,
    Overlap,
    RetryPolicy,
    Target,
)
from cronkeeper.triggers import CronTrigger, DateTrigger, IntervalTrigger, Trigger

E = TypeVar("E", Overlap, Catchup)

JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
CALL_REF = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.<>]*")
SCHEDULE_KEYS = ("cron", "every", "at")
TARGET_KEYS = ("command", "call", "checkin")
NOTIFY_KEYS = ("notify", "notify_on", "notify_after", "notify_every_failure")
# How runs are held to account: time limits, retries, overlap, kept output.
POLICY_KEYS = (
    "timeout",
    "max_retries",
    "retry_base",
    "retry_factor",
    "retry_cap",
    "retry_jitter",
    "overlap",
    "max_instances",
    "output_limit",
)
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
        *POLICY_KEYS,
        "misfire_grace",
        "catchup",
        *NOTIFY_KEYS,
        "long_running",
    }
)
# The same options as the defaults of every job (``[notify]`` in cronkeeper.toml), under shorter names.
DEFAULT_NOTIFY_KEYS = ("to", "on", "after", "every_failure")
# The kinds that tell of an incident starting.
INCIDENT_KINDS = frozenset({AlertKind.FAILED, AlertKind.TIMED_OUT, AlertKind.LOST, AlertKind.MISSED})
CHANNEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_CHANNELS = 20


def build_spec(data: Mapping[str, Any], *, default_timezone: str = "UTC", now: datetime) -> JobSpec:
    """Validate ``data`` and build the job it describes; ``now`` anchors an interval without a ``start``."""
    unknown = sorted(set(data) - KNOWN_KEYS)
    if unknown:
        raise ValidationError(unknown[0], "unknown option")
    for key, value in data.items():
        _check_strings(key, value)
    job_id = job_id_of(data.get("id"))
    return JobSpec(
        id=job_id,
        target=_target(data),
        trigger=build_trigger(data, default_timezone=default_timezone, now=now),
        name=text_of(data, "name"),
        description=text_of(data, "description"),
        tags=tags_of(data.get("tags", ())),
        timeout=_optional_duration(data, "timeout", positive=True),
        retry=_retry(data),
        overlap=_choice(data, "overlap", Overlap, Overlap.ALLOW),
        max_instances=_int(data, "max_instances", 1, minimum=1, maximum=10_000),
        # Positive: a zero grace would turn every fire into a misfire (and, with catchup=skip, never run).
        misfire_grace=_optional_duration(data, "misfire_grace", positive=True) or timedelta(seconds=60),
        catchup=_choice(data, "catchup", Catchup, Catchup.ONCE),
        jitter=_optional_duration(data, "jitter") or timedelta(0),
        output_limit=_int(data, "output_limit", 64 * 1024, minimum=0, maximum=64 * 1024 * 1024),
        notify=notify_options(data),
        long_running=long_running_of(data.get("long_running")),
    )


def build_trigger(data: Mapping[str, Any], *, default_timezone: str, now: datetime) -> Trigger:
    """The trigger named by exactly one of ``cron``, ``every`` or ``at`` (used by reschedule too)."""
    given = [key for key in SCHEDULE_KEYS if data.get(key) not in (None, "")]
    if not given:
        # An empty one given alone is named (forms send every field, the unused ones empty).
        empty = [key for key in SCHEDULE_KEYS if data.get(key) == ""]
        if len(empty) == 1:
            raise InvalidScheduleError(empty[0], "must not be empty")
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


def job_id_of(value: Any) -> str:
    if not isinstance(value, str) or not JOB_ID.fullmatch(value):
        raise ValidationError(
            "id", "must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


def _target(data: Mapping[str, Any]) -> Target:
    given = [key for key in TARGET_KEYS if data.get(key) not in (None, "", [], False)]
    if len(given) != 1:
        raise ValidationError("target", "give exactly one of command, call or checkin = true")
    if given[0] == "call":
        return _callable_target(data)
    if given[0] == "checkin":
        return _checkin_target(data)
    return _command_target(data)


def _checkin_target(data: Mapping[str, Any]) -> CheckinTarget:
    if data["checkin"] is not True:
        raise ValidationError("checkin", "must be true or false")
    for key in ("args", "kwargs", "isolate", "shell", "env", "cwd"):
        if data.get(key):
            raise ValidationError(key, "does not apply to a check-in job (cronkeeper does not run it)")
    return CheckinTarget()


def _callable_target(data: Mapping[str, Any]) -> CallableTarget:
    ref = data["call"]
    if not isinstance(ref, str) or not CALL_REF.fullmatch(ref):
        raise ValidationError("call", "must be an import path such as 'package.module:function'")
    for key in ("shell", "env", "cwd"):
        if data.get(key):
            raise ValidationError(key, "only applies to command jobs")
    args, kwargs = call_arguments(data)
    return CallableTarget(ref, args, kwargs, _bool(data, "isolate"))


def call_arguments(data: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
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
    cwd = data.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise ValidationError("cwd", "must be a path")
    return CommandTarget(argv, shell, _environment(data.get("env") or {}), cwd)


def _environment(env: Any) -> dict[str, str]:
    if not isinstance(env, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        raise ValidationError("env", "must be a table of string values")
    # What the operating system would refuse when the job runs is refused now.
    for name, value in env.items():
        if not name or "=" in name:
            raise ValidationError("env", f"{name!r} is not a variable name (one is non-empty, without '=')")
        if len(name.encode()) + len(value.encode()) + 2 > MAX_ENV_ENTRY:
            raise ValidationError(
                "env", f"{name}: a variable holds at most {MAX_ENV_ENTRY - 2} bytes, name included"
            )
    return dict(env)


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


def notify_options(data: Mapping[str, Any], keys: tuple[str, ...] = NOTIFY_KEYS) -> NotifyOptions:
    """A job's notification options (``keys`` names them: a job's, or the ``[notify]`` defaults'); each
    one not given stays None, to be taken from the defaults."""
    channels_key, on_key, after_key, every_key = keys
    channels = data.get(channels_key)
    on = data.get(on_key)
    after = data.get(after_key)
    every = data.get(every_key)
    if every is not None and not isinstance(every, bool):
        raise ValidationError(every_key, "must be true or false")
    return NotifyOptions(
        channels=None if channels is None else channel_names(channels, channels_key),
        on=None if on is None else alert_kinds(on, on_key),
        after=None if after is None else _int(data, after_key, 1, minimum=1, maximum=1000),
        every_failure=every,
    )


def long_running_of(value: Any) -> LongRunning | None:
    """``"30m"`` (or seconds) past which a run is long, or ``"3x"``: three times the job's median."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().lower().endswith("x"):
        try:
            factor = float(value.strip()[:-1])
        except ValueError:
            factor = 0.0
        if not 1 < factor <= MAX_LONG_RUNNING_FACTOR:
            raise ValidationError(
                "long_running",
                f"a multiple of the median must be above 1 and at most {MAX_LONG_RUNNING_FACTOR}x",
            )
        return LongRunning(times_median=factor)
    after = parse_duration(value, "long_running")
    if after <= timedelta(0):
        raise ValidationError("long_running", "must be longer than zero")
    return LongRunning(after=after)


def channel_names(value: Any, field: str) -> tuple[str, ...]:
    """Channel names, as a list or one comma-separated string; ``[]`` means "tell nobody"."""
    names = _word_list(value, field, "must be a list of channel names")
    if len(names) > MAX_CHANNELS:
        raise ValidationError(field, f"at most {MAX_CHANNELS} channels")
    for name in names:
        channel_name(name, field)
    return tuple(dict.fromkeys(names))


def channel_name(value: Any, field: str = "name") -> str:
    if not isinstance(value, str) or not CHANNEL_NAME.fullmatch(value):
        raise ValidationError(
            field, "channel names are 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


def alert_kinds(value: Any, field: str) -> frozenset[AlertKind]:
    choosable = [kind.value for kind in AlertKind if kind not in (AlertKind.TEST, AlertKind.REPORT)]
    kinds = _word_list(value, field, f"must be a list of alert kinds among {', '.join(choosable)}")
    unknown = [kind for kind in kinds if kind not in choosable]
    if unknown:
        raise ValidationError(field, f"{unknown[0]!r} is not one of {', '.join(choosable)}")
    chosen = frozenset(AlertKind(kind) for kind in kinds)
    if AlertKind.RECOVERED in chosen and chosen.isdisjoint(INCIDENT_KINDS):
        # A recovery is the end of an incident people heard of: with none of these, they never would.
        raise ValidationError(field, "recovered needs one of failed, timed_out, lost or missed beside it")
    return chosen


def _word_list(value: Any, field: str, reason: str) -> list[str]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise ValidationError(field, reason)
    return list(value)


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
MAX_LONG_RUNNING_FACTOR = 1000

# Longest accepted texts: names and tags are shown in lists, and PostgreSQL enforces the name column's size.
TEXT_LIMITS = {"name": 200, "description": 4000}
MAX_TAGS = 20
MAX_TAG_LENGTH = 50
# Linux refuses to start a program with an environment string ("NAME=value" and its NUL) of 128 KiB or more.
MAX_ENV_ENTRY = 128 * 1024


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


def text_of(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key) or ""
    if not isinstance(value, str):
        raise ValidationError(key, "must be text")
    limit = TEXT_LIMITS[key]
    if len(value) > limit:
        raise ValidationError(key, f"must be at most {limit} characters")
    return _storable(key, value)


def tags_of(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(tag, str) for tag in value):
        raise ValidationError("tags", "must be a list of words")
    if len(value) > MAX_TAGS:
        raise ValidationError("tags", f"at most {MAX_TAGS} tags")
    for tag in value:
        if len(tag) > MAX_TAG_LENGTH:
            raise ValidationError("tags", f"each tag must be at most {MAX_TAG_LENGTH} characters")
        # Tags are written "a, b" in forms and the CLI, in one line: one that could not come back from there
        # is refused (a browser drops line breaks from a text field).
        if not tag or tag != tag.strip() or "," in tag or not tag.isprintable():
            raise ValidationError(
                "tags", f"{tag!r} is not a tag (one has no comma, line break or surrounding space)"
            )
        _storable("tags", tag)
    return tuple(value)


def _choice(data: Mapping[str, Any], key: str, enum: type[E], default: E) -> E:
    value = data.get(key, default)
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise ValidationError(key, f"{value!r} is not one of {allowed}") from None


def check_not_past(spec: JobSpec, now: datetime) -> None:
    """Refuse a new one-off whose instant is past its misfire grace: it would never run."""
    trigger = spec.trigger
    if isinstance(trigger, DateTrigger) and trigger.at < now - spec.misfire_grace:
        raise ValidationError("at", f"{trigger.at.isoformat()} is in the past")
