"""Editing a job's schedule and policies, and the live preview of a schedule as it is typed.

The form is a view of the same options the API and the config file take, and goes through the same
validation (:meth:`JobService.edit_job`): a bad value names its field, and nothing is saved.  The command is
not editable here: commands are admin-only and changed through the API or the CLI, where they are reviewed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from pydantic import BaseModel
from starlette.responses import Response

from cronkeeper.durations import format_duration
from cronkeeper.exceptions import ValidationError
from cronkeeper.models import Catchup, Job, Overlap
from cronkeeper.specs import SCHEDULE_KEYS
from cronkeeper.triggers import CronTrigger, DateTrigger, IntervalTrigger
from cronkeeper.web.api_models import MAX_ID
from cronkeeper.web.auth import client_address
from cronkeeper.web.context import render
from cronkeeper.web.pages.common import Admin, Viewer, see_other, service

router = APIRouter()
# The form's single schedule input stands for whichever of these the kind selects.
_SCHEDULE_INPUT = {*SCHEDULE_KEYS, "schedule"}


class ScheduleForm(BaseModel):
    """The schedule fields, as typed (text): parsing belongs to the validation layer, not to the form."""

    kind: str = "cron"
    schedule: str = ""
    seconds: str = ""
    timezone: str = ""
    start: str = ""
    end: str = ""


class EditForm(ScheduleForm):
    """Schedule and policies; ``version`` guards against saving over someone else's edit."""

    version: str = ""
    timeout: str = ""
    max_retries: str = "0"
    retry_base: str = ""
    retry_factor: str = ""
    retry_cap: str = ""
    overlap: str = Overlap.ALLOW.value
    max_instances: str = "1"
    misfire_grace: str = ""
    catchup: str = Catchup.ONCE.value


def schedule_options(form: ScheduleForm) -> dict[str, Any]:
    """The options a schedule form stands for, in the shape :func:`cronkeeper.specs.build_trigger` reads; a
    blank time zone is None, the default zone (rather than absent, which would keep the job's old zone)."""
    if form.kind not in SCHEDULE_KEYS:
        raise ValidationError("kind", "must be cron, every or at")
    options: dict[str, Any] = {form.kind: form.schedule.strip(), "timezone": form.timezone.strip() or None}
    if form.kind == "cron" and form.seconds:
        options["seconds"] = True
    for key in ("start", "end"):
        value = getattr(form, key).strip()
        if value:
            options[key] = value
    return options


def _whole(value: str, field: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ValidationError(field, "must be a whole number") from None


def _version(value: str) -> int | None:
    """The version the form was filled from; one the database could not even hold is bad input."""
    if not value.strip():
        return None
    version = _whole(value, "version")
    if not 1 <= version <= MAX_ID:
        raise ValidationError("version", "is not a version of this job; reload the page")
    return version


def _number(value: str, field: str) -> float | None:
    if not value.strip():
        return None
    try:
        return float(value.strip())
    except ValueError:
        raise ValidationError(field, "must be a number") from None


def policy_changes(form: EditForm) -> dict[str, Any]:
    """The policies of the form; a blank duration means the default (no timeout, for ``timeout``)."""
    changes: dict[str, Any] = {
        "timeout": form.timeout.strip() or None,
        "max_retries": _whole(form.max_retries, "max_retries"),
        "retry_base": form.retry_base.strip() or None,
        "retry_cap": form.retry_cap.strip() or None,
        "overlap": form.overlap,
        "max_instances": _whole(form.max_instances, "max_instances"),
        "misfire_grace": form.misfire_grace.strip() or None,
        "catchup": form.catchup,
    }
    factor = _number(form.retry_factor, "retry_factor")
    if factor is not None:
        changes["retry_factor"] = factor
    return changes


def form_of(job: Job) -> EditForm:
    """The form filled in with the job as it is, so that an untouched field saves exactly what it showed."""
    spec = job.spec
    return EditForm(
        **_schedule_fields(job),
        version=str(job.version),
        timeout="" if spec.timeout is None else exact_duration(spec.timeout),
        max_retries=str(spec.retry.max_retries),
        retry_base=exact_duration(spec.retry.base),
        retry_factor=exact_number(spec.retry.factor),
        retry_cap=exact_duration(spec.retry.cap),
        overlap=spec.overlap.value,
        max_instances=str(spec.max_instances),
        misfire_grace=exact_duration(spec.misfire_grace),
        catchup=spec.catchup.value,
    )


def exact_duration(delta: timedelta) -> str:
    """``5m`` for whole seconds; to the microsecond otherwise (``1234.5678s``), where
    :func:`format_duration` would round to six digits and saving the untouched form would change the job."""
    if not delta.microseconds:
        return format_duration(delta)
    whole = delta.days * 86400 + delta.seconds
    return f"{whole}.{delta.microseconds:06d}".rstrip("0") + "s"


def exact_number(value: float) -> str:
    """The shortest text that reads back as exactly ``value``: ``2`` rather than ``2.0``, ``1.23456789``."""
    return repr(value).removesuffix(".0")


def _schedule_fields(job: Job) -> dict[str, str]:
    trigger = job.spec.trigger
    if isinstance(trigger, CronTrigger):
        return {
            "kind": "cron",
            "schedule": trigger.cron.expression,
            "seconds": "on" if trigger.cron.seconds else "",
            "timezone": trigger.timezone.key,
            "start": "" if trigger.start_at is None else trigger.start_at.isoformat(),
            "end": "" if trigger.end_at is None else trigger.end_at.isoformat(),
        }
    if isinstance(trigger, IntervalTrigger):
        return {
            "kind": "every",
            "schedule": exact_duration(trigger.every),
            "start": trigger.anchor.isoformat(),
            "end": "" if trigger.end_at is None else trigger.end_at.isoformat(),
        }
    assert isinstance(trigger, DateTrigger)
    return {"kind": "at", "schedule": trigger.at.isoformat()}


def changes_of(job: Job, form: EditForm) -> dict[str, Any]:
    """What to save: the policies, and the schedule only if it was touched, because a new schedule restarts
    from now (and an interval's anchor would move) even when it reads the same."""
    changes = policy_changes(form)
    if schedule_options(form) != schedule_options(form_of(job)):
        changes.update(schedule_options(form))
    return changes


def _edit_page(request: Request, job: Job, form: EditForm, error: ValidationError | None = None) -> Response:
    context = {
        "nav": "jobs",
        "job": job,
        "form": form,
        "error": error,
        "error_field": _input_of(error),
        "overlaps": [member.value for member in Overlap],
        "catchups": [member.value for member in Catchup],
        "preview": _preview(request, form),
    }
    return render(request, "job_edit.html", context, status_code=422 if error else 200)


def _input_of(error: ValidationError | None) -> str | None:
    """The form input an error is about: ``cron``, ``every`` and ``at`` are all typed into ``schedule``."""
    if error is None:
        return None
    return "schedule" if error.field in _SCHEDULE_INPUT else error.field


def _preview(request: Request, form: ScheduleForm) -> dict[str, Any]:
    try:
        return {"result": service(request).preview_schedule(schedule_options(form)), "error": None}
    except ValidationError as exc:
        return {"result": None, "error": exc}


@router.get("/jobs/{job_id}/edit")
def edit_form(request: Request, job_id: str, _principal: Admin) -> Response:
    job = service(request).get_job(job_id)
    return _edit_page(request, job, form_of(job))


@router.post("/jobs/{job_id}/edit")
def save(request: Request, job_id: str, principal: Admin, form: Annotated[EditForm, Form()]) -> Response:
    jobs = service(request)
    job = jobs.get_job(job_id)
    try:
        jobs.edit_job(
            job_id,
            changes_of(job, form),
            by=principal.name,
            via=client_address(request),
            expected_version=_version(form.version),
        )
    except ValidationError as exc:
        return _edit_page(request, job, form, exc)
    return see_other(request, f"/jobs/{job_id}")


@router.post("/jobs/preview")
def preview(request: Request, _principal: Viewer, form: Annotated[ScheduleForm, Form()]) -> Response:
    """For the schedule editor, as the user types: always 200 (htmx swaps only successful answers), with
    either the description and next fires or the error naming the field."""
    return render(request, "_preview.html", {"preview": _preview(request, form)})
