"""The stored form of a job: the same shape of mapping a user writes, so that what the database keeps and what
``--json`` prints agree with the input.  :func:`spec_from_stored` reads it back without validating it again:
it was validated when saved, and carries its zone and interval anchor, so nothing about "now" is needed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

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
from cronkeeper.specs.validate import long_running_of, parse_cron
from cronkeeper.triggers import CronTrigger, DateTrigger, IntervalTrigger, Trigger


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
    elif isinstance(target, CheckinTarget):
        out["checkin"] = True
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
    out.update(notify_fields(spec.notify))
    if spec.long_running is not None:
        out["long_running"] = long_running_text(spec.long_running)
    return out


def long_running_text(long_running: LongRunning) -> str | float:
    """``"3x"`` for a multiple of the median, else seconds: what :func:`long_running_of` reads back."""
    if long_running.times_median is not None:
        return f"{long_running.times_median:g}x"
    assert long_running.after is not None
    return long_running.after.total_seconds()


def notify_fields(options: NotifyOptions) -> dict[str, Any]:
    """Only the options the job set: one left out follows the defaults, also when they change later."""
    fields = {
        "notify": None if options.channels is None else list(options.channels),
        "notify_on": None if options.on is None else sorted(kind.value for kind in options.on),
        "notify_after": options.after,
        "notify_every_failure": options.every_failure,
    }
    return {key: value for key, value in fields.items() if value is not None}


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


def spec_from_stored(data: Mapping[str, Any]) -> JobSpec:
    """The job a stored form describes (the inverse of :func:`spec_to_dict`).  Options a row written by an
    older version lacks take their defaults."""
    retry = RetryPolicy(
        max_retries=int(data.get("max_retries", 0)),
        base=_seconds(data.get("retry_base"), 1.0),
        factor=float(data.get("retry_factor", 2.0)),
        cap=_seconds(data.get("retry_cap"), 30.0),
        jitter=float(data.get("retry_jitter", 0.1)),
    )
    timeout = data.get("timeout")
    return JobSpec(
        id=data["id"],
        target=_stored_target(data),
        trigger=_stored_trigger(data),
        name=data.get("name") or "",
        description=data.get("description") or "",
        tags=tuple(data.get("tags") or ()),
        timeout=None if timeout is None else timedelta(seconds=timeout),
        retry=retry,
        overlap=Overlap(data.get("overlap", Overlap.ALLOW)),
        max_instances=int(data.get("max_instances", 1)),
        misfire_grace=_seconds(data.get("misfire_grace"), 60.0),
        catchup=Catchup(data.get("catchup", Catchup.ONCE)),
        jitter=_seconds(data.get("jitter"), 0.0),
        output_limit=int(data.get("output_limit", 64 * 1024)),
        notify=stored_notify(data),
        long_running=long_running_of(data.get("long_running")),
    )


def stored_notify(data: Mapping[str, Any]) -> NotifyOptions:
    """A job's notification options from its stored form (the store reads them alone, without the rest)."""
    channels, on = data.get("notify"), data.get("notify_on")
    return NotifyOptions(
        channels=None if channels is None else tuple(channels),
        on=None if on is None else frozenset(AlertKind(kind) for kind in on),
        after=data.get("notify_after"),
        every_failure=data.get("notify_every_failure"),
    )


def _stored_target(data: Mapping[str, Any]) -> Target:
    if data.get("checkin"):
        return CheckinTarget()
    if data.get("call"):
        return CallableTarget(
            data["call"],
            tuple(data.get("args") or ()),
            dict(data.get("kwargs") or {}),
            bool(data.get("isolate", False)),
        )
    shell = bool(data.get("shell", False))
    command = data["command"]
    argv = (command,) if shell else tuple(command)
    return CommandTarget(argv, shell, dict(data.get("env") or {}), data.get("cwd"))


def _stored_trigger(data: Mapping[str, Any]) -> Trigger:
    if data.get("cron") is not None:
        cron = parse_cron(str(data["cron"]), bool(data.get("seconds", False)))
        return CronTrigger(cron, ZoneInfo(data["timezone"]), _utc(data.get("start")), _utc(data.get("end")))
    if data.get("every") is not None:
        anchor = _utc(data["start"])
        assert anchor is not None, "a stored interval always has its anchor"
        return IntervalTrigger(timedelta(seconds=data["every"]), anchor, _utc(data.get("end")))
    at = _utc(data["at"])
    assert at is not None
    return DateTrigger(at)


def _utc(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).astimezone(UTC)


def _seconds(value: float | None, default: float) -> timedelta:
    return timedelta(seconds=default if value is None else value)
