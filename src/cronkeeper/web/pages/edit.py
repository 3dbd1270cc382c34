"""Creating a job, editing every option of one, duplicating one, and the live preview of a schedule as it is
typed.

The form is a view of the same options the API and the config file take, and goes through the same
validation (:meth:`JobService.add_job`, :meth:`JobService.edit_job`): a bad value is named beside its field,
and nothing is saved.  A command is a list of arguments, one per line, never split by a shell; a shell
command is a separate, marked choice.  Only admins reach these pages, and they already see a job's
environment on its page, so the form shows it too.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from pydantic import BaseModel, field_validator
from starlette.responses import Response

from cronkeeper.durations import format_duration
from cronkeeper.exceptions import JobExistsError, ValidationError
from cronkeeper.models import AlertKind, CallableTarget, Catchup, CheckinTarget, CommandTarget, Job, Overlap
from cronkeeper.specs import SCHEDULE_KEYS
from cronkeeper.specs.stored import long_running_text
from cronkeeper.triggers import CronTrigger, DateTrigger, IntervalTrigger
from cronkeeper.web.api_models import MAX_ID
from cronkeeper.web.auth import client_address
from cronkeeper.web.context import render
from cronkeeper.web.pages.common import Admin, Viewer, see_other, service

router = APIRouter()
TARGETS = ("command", "shell", "call", "checkin")
COPY_SUFFIX = "-copy"
MAX_JOB_ID = 128
# The kinds of alert a job may ask for (a test message and the report are not about a job's runs).
JOB_ALERT_KINDS = [kind.value for kind in AlertKind if kind not in (AlertKind.TEST, AlertKind.REPORT)]
# Which input shows an error about an option, where the option's name is not the input's.
_INPUT_OF = {
    **dict.fromkeys(SCHEDULE_KEYS, "schedule"),
    "shell": "target",
    "checkin": "target",
    "retry": "max_retries",
}


class ScheduleForm(BaseModel):
    """The schedule fields, as typed (text): parsing belongs to the validation layer, not to the form."""

    kind: str = "cron"
    schedule: str = ""
    seconds: str = ""
    timezone: str = ""
    start: str = ""
    end: str = ""


class JobForm(ScheduleForm):
    """Every option of a job, as typed; ``version`` guards against saving over someone else's edit.

    Browsers send a text box's line breaks as CRLF; they are read as the LF they stand for, so that a shell
    line or a description keeps the form it was shown in.
    """

    @field_validator("*", mode="before")
    @classmethod
    def _lines(cls, value: object) -> object:
        return value.replace("\r\n", "\n") if isinstance(value, str) else value

    version: str = ""
    id: str = ""
    name: str = ""
    description: str = ""
    tags: str = ""
    jitter: str = ""
    misfire_grace: str = ""
    catchup: str = Catchup.ONCE.value
    target: str = "command"
    argv: str = ""
    shell_command: str = ""
    call: str = ""
    args: str = ""
    kwargs: str = ""
    isolate: str = ""
    env: str = ""
    cwd: str = ""
    timeout: str = ""
    max_retries: str = "0"
    retry_base: str = ""
    retry_factor: str = ""
    retry_cap: str = ""
    retry_jitter: str = ""
    overlap: str = Overlap.ALLOW.value
    max_instances: str = "1"
    output_limit: str = ""
    notify: str = ""
    notify_on: str = ""
    notify_after: str = ""
    notify_every_failure: str = ""
    long_running: str = ""


# ---- form to options --------------------------------------------------------------------------------------


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


def definition_of(form: JobForm) -> dict[str, Any]:
    """Every option the form stands for, None for one left blank (its default).  Each target option is
    there, None where the chosen target has no such option, so that a new target replaces the old one."""
    options: dict[str, Any] = {
        "name": form.name if form.name.strip() else None,
        "description": form.description if form.description.strip() else None,
        "tags": [tag.strip() for tag in form.tags.split(",") if tag.strip()],
        **_blank_is_default(form, "jitter", "misfire_grace", "timeout", "retry_base", "retry_cap"),
        "catchup": form.catchup,
        **target_options(form),
        "max_retries": _whole(form.max_retries, "max_retries"),
        "retry_factor": _number(form.retry_factor, "retry_factor"),
        "retry_jitter": _number(form.retry_jitter, "retry_jitter"),
        "overlap": form.overlap,
        "max_instances": _whole(form.max_instances, "max_instances"),
        "output_limit": _whole(form.output_limit, "output_limit") if form.output_limit.strip() else None,
        "notify": _words(form.notify),
        "notify_on": _words(form.notify_on),
        "notify_after": _whole(form.notify_after, "notify_after") if form.notify_after.strip() else None,
        "notify_every_failure": _choice_flag(form.notify_every_failure, "notify_every_failure"),
        "long_running": form.long_running.strip() or None,
    }
    options.update(schedule_options(form))
    return options


def target_options(form: JobForm) -> dict[str, Any]:
    if form.target not in TARGETS:
        raise ValidationError("target", f"must be one of {', '.join(TARGETS)}")
    options: dict[str, Any] = dict.fromkeys(
        ("command", "shell", "env", "cwd", "call", "args", "kwargs", "isolate", "checkin")
    )
    if form.target in ("command", "shell"):
        if form.target == "command":
            options["command"] = _arguments(form.argv)
        else:
            options.update(command=form.shell_command if form.shell_command.strip() else "", shell=True)
        if not options["command"]:
            raise ValidationError("command", "give the program to run and its arguments")
        options.update(env=_environment(form.env), cwd=form.cwd if form.cwd.strip() else None)
        return options
    # The environment and working directory boxes belong to commands: another target leaves them aside.
    if form.target == "call":
        if not form.call.strip():
            raise ValidationError("call", "give the function, as package.module:function")
        options.update(
            call=form.call.strip(),
            args=_json(form.args, "args", list, 'a JSON list, such as [1, "a"]'),
            kwargs=_json(form.kwargs, "kwargs", dict, 'a JSON object, such as {"days": 30}'),
            isolate=bool(form.isolate),
        )
    else:
        options["checkin"] = True
    return options


def _blank_is_default(form: JobForm, *names: str) -> dict[str, str | None]:
    return {name: getattr(form, name).strip() or None for name in names}


def _arguments(text: str) -> list[str]:
    """One argument per line, as typed: a blank line between two arguments is an empty argument; blank
    lines at the end are not arguments (a text box often ends with one); a line of spaces is an argument."""
    lines = text.split("\n")
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _environment(text: str) -> dict[str, str] | None:
    """``NAME=value`` lines (the value may hold ``=``; blank lines are skipped), or a JSON object: the form
    an environment is shown in when a value holds a line break, which a line cannot."""
    if text.lstrip().startswith("{"):
        variables = _json(text, "env", dict, 'a JSON object of strings, such as {"NAME": "value"}')
        return variables or None
    variables = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, equals, value = line.partition("=")
        if not equals or not name.strip():
            raise ValidationError("env", f"each line is NAME=value, not {line.strip()[:40]!r}")
        variables[name.strip()] = value
    return variables or None


def _environment_text(env: dict[str, str]) -> str:
    """The environment as the form shows it: ``NAME=value`` lines, or JSON when a value (or a name) would not
    come back the same from a line, so that saving the form untouched keeps it."""
    lines = "".join(f"{name}={value}\n" for name, value in env.items())
    try:
        if _environment(lines) == (env or None):
            return lines
    except ValidationError:  # a name no line can hold, kept from before names were checked
        pass
    return json.dumps(env, indent=1, ensure_ascii=False) + "\n"


def _json(text: str, field: str, kind: type, example: str) -> Any:
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except ValueError:
        raise ValidationError(field, f"must be {example}") from None
    if not isinstance(value, kind):
        raise ValidationError(field, f"must be {example}")
    return value


def _words(text: str) -> list[str] | None:
    """A comma-separated list; blank is None (the default), ``-`` an empty list (none at all)."""
    if not text.strip():
        return None
    if text.strip() == "-":
        return []
    return [word.strip() for word in text.split(",") if word.strip()]


def _choice_flag(text: str, field: str) -> bool | None:
    choices = {"": None, "yes": True, "no": False}
    if text not in choices:
        raise ValidationError(field, "must be yes, no or blank for the default")
    return choices[text]


def _whole(value: str, field: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ValidationError(field, "must be a whole number") from None


def _number(value: str, field: str) -> float | None:
    if not value.strip():
        return None
    try:
        return float(value.strip())
    except ValueError:
        raise ValidationError(field, "must be a number") from None


def _version(value: str) -> int | None:
    """The version the form was filled from; one the database could not even hold is bad input."""
    if not value.strip():
        return None
    version = _whole(value, "version")
    if not 1 <= version <= MAX_ID:
        raise ValidationError("version", "is not a version of this job; reload the page")
    return version


def changes_of(job: Job, form: JobForm) -> dict[str, Any]:
    """What to save: every option, and the schedule only if it was touched, because a new schedule restarts
    from now (and an interval's anchor would move) even when it reads the same."""
    if form.id.strip() and form.id.strip() != job.id:
        raise ValidationError("id", "cannot be changed; duplicate the job instead")
    changes = definition_of(form)
    if schedule_options(form) == schedule_options(form_of(job)):
        for key in (*SCHEDULE_KEYS, "seconds", "timezone", "start", "end"):
            changes.pop(key, None)
    return changes


def new_job(form: JobForm) -> dict[str, Any]:
    """A new job's definition: what the form gives, the defaults for what it leaves blank."""
    options = {key: value for key, value in definition_of(form).items() if value is not None}
    return {"id": form.id.strip(), **options}


# ---- job to form ------------------------------------------------------------------------------------------


def form_of(job: Job, *, copy: bool = False) -> JobForm:
    """The form filled in with the job as it is, so that an untouched field saves exactly what it showed; a
    copy gets a new id and no version (a new job)."""
    spec = job.spec
    notify = spec.notify
    return JobForm(
        **_schedule_fields(job),
        **_target_fields(job),
        version="" if copy else str(job.version),
        id=f"{job.id[: MAX_JOB_ID - len(COPY_SUFFIX)]}{COPY_SUFFIX}" if copy else job.id,
        name=spec.name,
        description=spec.description,
        tags=", ".join(spec.tags),
        jitter=exact_duration(spec.jitter) if spec.jitter else "",
        misfire_grace=exact_duration(spec.misfire_grace),
        catchup=spec.catchup.value,
        timeout="" if spec.timeout is None else exact_duration(spec.timeout),
        max_retries=str(spec.retry.max_retries),
        retry_base=exact_duration(spec.retry.base),
        retry_factor=exact_number(spec.retry.factor),
        retry_cap=exact_duration(spec.retry.cap),
        retry_jitter=exact_number(spec.retry.jitter),
        overlap=spec.overlap.value,
        max_instances=str(spec.max_instances),
        output_limit=str(spec.output_limit),
        notify="" if notify.channels is None else (", ".join(notify.channels) or "-"),
        notify_on="" if notify.on is None else (", ".join(sorted(kind.value for kind in notify.on)) or "-"),
        notify_after="" if notify.after is None else str(notify.after),
        notify_every_failure={None: "", True: "yes", False: "no"}[notify.every_failure],
        long_running="" if spec.long_running is None else _long_running(spec.long_running),
    )


def _long_running(long_running: Any) -> str:
    text = long_running_text(long_running)
    return text if isinstance(text, str) else exact_duration(timedelta(seconds=text))


def _target_fields(job: Job) -> dict[str, str]:
    target = job.spec.target
    if isinstance(target, CommandTarget):
        fields = {
            "env": _environment_text(target.env),
            "cwd": target.cwd or "",
        }
        if target.shell:
            return {**fields, "target": "shell", "shell_command": target.argv[0]}
        return {**fields, "target": "command", "argv": "".join(f"{arg}\n" for arg in target.argv)}
    if isinstance(target, CheckinTarget):
        return {"target": "checkin"}
    assert isinstance(target, CallableTarget)
    return {
        "target": "call",
        "call": target.ref,
        "args": json.dumps(list(target.args), ensure_ascii=False) if target.args else "",
        "kwargs": json.dumps(dict(target.kwargs), ensure_ascii=False) if target.kwargs else "",
        "isolate": "on" if target.isolate else "",
    }


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


# ---- pages ------------------------------------------------------------------------------------------------


def _form_page(
    request: Request, form: JobForm, *, job: Job | None, error: ValidationError | None = None
) -> Response:
    context = {
        "nav": "jobs",
        "job": job,
        "form": form,
        "error": error,
        "error_field": _input_of(error, form),
        "overlaps": [member.value for member in Overlap],
        "catchups": [member.value for member in Catchup],
        "alert_kinds": JOB_ALERT_KINDS,
        "preview": _preview(request, form),
    }
    return render(request, "job_form.html", context, status_code=422 if error else 200)


def _input_of(error: ValidationError | None, form: JobForm) -> str | None:
    """The form input an error is about: ``cron``, ``every`` and ``at`` are all typed into ``schedule``, a
    command into the argument list or the shell command."""
    if error is None:
        return None
    if error.field == "command":
        return "shell_command" if form.target == "shell" else "argv"
    return _INPUT_OF.get(error.field, error.field)


def _preview(request: Request, form: ScheduleForm) -> dict[str, Any]:
    try:
        return {"result": service(request).preview_schedule(schedule_options(form)), "error": None}
    except ValidationError as exc:
        return {"result": None, "error": exc}


@router.get("/new")
def new_form(request: Request, _principal: Admin, copy: str | None = None) -> Response:
    """A blank form, or (``?copy=ID``) one filled in from a job, with a new id.  Not under ``/jobs/``, where
    ``new`` could be a job's id."""
    form = JobForm() if copy is None else form_of(service(request).get_job(copy), copy=True)
    return _form_page(request, form, job=None)


@router.post("/new")
def create(request: Request, principal: Admin, form: Annotated[JobForm, Form()]) -> Response:
    try:
        job = service(request).add_job(
            new_job(form), by=principal.name, via=client_address(request), origin="web"
        )
    except ValidationError as exc:
        return _form_page(request, form, job=None, error=exc)
    except JobExistsError:
        taken = ValidationError("id", "a job with this id exists; choose another")
        return _form_page(request, form, job=None, error=taken)
    return see_other(request, f"/jobs/{job.id}")


@router.get("/jobs/{job_id}/edit")
def edit_form(request: Request, job_id: str, _principal: Admin) -> Response:
    job = service(request).get_job(job_id)
    return _form_page(request, form_of(job), job=job)


@router.post("/jobs/{job_id}/edit")
def save(request: Request, job_id: str, principal: Admin, form: Annotated[JobForm, Form()]) -> Response:
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
        return _form_page(request, form, job=job, error=exc)
    return see_other(request, f"/jobs/{job_id}")


@router.post("/jobs/preview")
def preview(request: Request, _principal: Viewer, form: Annotated[ScheduleForm, Form()]) -> Response:
    """For the schedule editor, as the user types: always 200 (htmx swaps only successful answers), with
    either the description and next fires or the error naming the field."""
    return render(request, "_preview.html", {"preview": _preview(request, form)})
