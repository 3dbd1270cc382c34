"""The JSON API's inputs (bodies, parameters) and the documented shapes of its answers.

Request models check only JSON types (strictly: ``"3"`` is not a number, ``1`` is not ``true``) and refuse
unknown keys; what the values mean is checked once, by :mod:`cronkeeper.specs` through the service, as for
every other face.  Where that layer reads several forms (a duration as seconds or ``"5m"``, a command as a
string or a list), the field takes any JSON value and only documents the forms, so that the error names the
field instead of a pydantic union branch.

Response models document what :mod:`cronkeeper.serialize` produces (the CLI's ``--json`` shapes); handlers
return those dicts directly, and a test keeps the two in step.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Header, Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from cronkeeper.models import Catchup, Overlap, RunStatus, TriggerSource
from cronkeeper.store.records import JobState

__all__ = ["JobState"]  # the jobs page's states, which the API filters on too

MAX_ID = 2**63 - 1  # what the database's integer columns hold: larger ids are bad input, not a crash
MAX_PAGE = 1000  # the most rows one page of a listing holds
_DURATION_SCHEMA = {"anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "examples": ["5m"]}]}
Duration = Annotated[Any, WithJsonSchema(_DURATION_SCHEMA)]
Command = Annotated[
    Any, WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})
]
Tags = Annotated[
    Any, WithJsonSchema({"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]})
]
OverlapChoice = Annotated[str, WithJsonSchema({"type": "string", "enum": [o.value for o in Overlap]})]
CatchupChoice = Annotated[str, WithJsonSchema({"type": "string", "enum": [c.value for c in Catchup]})]


def _storable(value: Any) -> None:
    pending = [value]  # a loop, not recursion: JSON nests as deep as its parser allows
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend([*item.keys(), *item.values()])
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            _check_text(item)


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text (it holds a lone surrogate)") from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("*", mode="before")
    @classmethod
    def _text_is_storable(cls, value: Any) -> Any:
        """JSON escapes can carry lone surrogates and NULs, which the specs layer lets through: once saved,
        they could not be sent as UTF-8 or stored in PostgreSQL, and every page listing them would fail."""
        _storable(value)
        return value


class ScheduleFields(_Strict):
    """A schedule: exactly one of ``cron``, ``every`` or ``at``."""

    cron: str | None = Field(
        None, description="Cron expression (5 fields, or @daily etc.).", examples=["0 3 * * *"]
    )
    every: Duration = Field(None, description="Interval: seconds, or text such as 30s, 5m, 1h30m, 2d.")
    at: str | None = Field(None, description="One-off: ISO-8601 instant (no offset: read in `timezone`).")
    seconds: bool | None = Field(None, description="Opt in to a 6-field cron expression with seconds first.")
    timezone: str | None = Field(
        None, description="IANA zone the schedule is evaluated in.", examples=["UTC"]
    )
    start: str | None = Field(None, description="ISO-8601 instant before which the job never fires.")
    end: str | None = Field(None, description="ISO-8601 instant after which the job never fires.")


class JobFields(ScheduleFields):
    """Every job option but ``id``, in the shape of the Python API and the TOML file."""

    name: str | None = Field(None, description="Display name (plain text; defaults to the id).")
    description: str | None = Field(None, description="Free text.")
    tags: Tags = Field(None, description="List of words, or one comma-separated string.")
    jitter: Duration = Field(None, description="Random delay added to each fire, up to this long.")
    command: Command = Field(None, description="Program to run: argv list, or a string split like a shell.")
    shell: bool | None = Field(None, description="Run `command` (one string) through /bin/sh.")
    env: dict[str, str] | None = Field(None, description="Extra environment variables of the command.")
    cwd: str | None = Field(None, description="Working directory of the command.")
    call: str | None = Field(None, description="Python callable as 'package.module:function'.")
    args: list[Any] | None = Field(None, description="Positional arguments of `call` (JSON values).")
    kwargs: dict[str, Any] | None = Field(None, description="Keyword arguments of `call` (JSON values).")
    isolate: bool | None = Field(
        None, description="Run `call` in a child process (so a timeout can kill it)."
    )
    timeout: Duration = Field(None, description="Longest a run may take before it is stopped.")
    max_retries: int | None = Field(None, description="Retries after a failure or timeout (default 0).")
    retry_base: Duration = Field(None, description="Wait before the first retry (default 1s).")
    retry_factor: float | None = Field(None, description="Each retry waits this much longer (default 2).")
    retry_cap: Duration = Field(None, description="Longest wait between retries (default 30s).")
    retry_jitter: float | None = Field(
        None, description="Random spread of retry waits, 0 to 1 (default 0.1)."
    )
    overlap: OverlapChoice | None = Field(
        None, description="When earlier runs are still active (default allow)."
    )
    max_instances: int | None = Field(None, description="Concurrent runs allowed with overlap=allow.")
    misfire_grace: Duration = Field(None, description="How late a fire may start before it is a misfire.")
    catchup: CatchupChoice | None = Field(None, description="What to do with misfires (default once).")
    output_limit: int | None = Field(None, description="Bytes of output kept per run (the tail).")
    notify: Tags = Field(
        None, description="Channels told of this job's incidents ([] for none; null: the defaults')."
    )
    notify_on: Tags = Field(
        None,
        description="Alert kinds: failed, timed_out, lost, missed, long_running, succeeded, recovered.",
    )
    notify_after: int | None = Field(None, description="Bad runs in a row before an incident is alerted.")
    long_running: Duration = Field(
        None, description="A run going longer is alerted (long_running): a duration, or '3x' the median."
    )
    notify_every_failure: bool | None = Field(None, description="Alert every bad run, not once per incident.")


class JobCreate(JobFields):
    """A new job."""

    id: str = Field(description="Unique slug: letters, digits, '.', '_' or '-'.", examples=["nightly-backup"])
    paused: bool = Field(False, description="Create the job paused.")


class JobPatch(JobFields):
    """Options to change; the rest stay.  A new schedule or target replaces the old one with its options."""

    id: str | None = Field(None, description="If given, must be the job's own id.")
    expected_version: int | None = Field(
        None,
        ge=1,
        le=MAX_ID,
        description="Refuse the edit (409) unless the job is still at this version; or send If-Match (412).",
    )


class PreviewRequest(ScheduleFields):
    """A schedule to explain before saving it."""

    count: int = Field(5, ge=1, le=50, description="How many next fires to list.")


# ---- answers -------------------------------------------------------------------------------------------


class ErrorOut(BaseModel):
    detail: str = Field(description="What is wrong, for people.")
    field: str | None = Field(None, description="The input field at fault, when there is one.")


class JobOut(BaseModel):
    id: str
    name: str
    enabled: bool = Field(description="False when its declaring config no longer lists it.")
    paused: bool
    schedule: str = Field(examples=["0 3 * * *", "every 5m"])
    schedule_description: str
    timezone: str | None
    next_due_at: datetime | None = Field(description="When the next run is due (the fire plus jitter).")
    next_run_at: datetime | None = Field(description="Deprecated: the same as next_due_at.", deprecated=True)
    origin: str = Field(
        description="Where the job was defined: api, cli, code (`code HOST:PID:ID` for one scheduler "
        "object of an APScheduler-style program), crontab, demo, or `config NAME` (a cronkeeper.toml's name "
        "or path)."
    )
    runs_on: str | None = Field(
        default=None,
        description="The scheduler object (host:pid:id) that alone can run the job, because its target (a "
        "bound method, a lambda) exists only there; null when any node can.",
    )
    version: int = Field(description="Bumped by every change; send it back as If-Match to edit safely.")
    created_at: datetime
    updated_at: datetime
    created_by: str | None
    updated_by: str | None
    spec: dict[str, Any] = Field(
        description="Every option, as POST /api/jobs takes them; env redacted for viewers."
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="Only in answers to a create or an edit: what the job was saved despite, e.g. a function "
        "this process cannot import (another process may).",
    )


class JobList(BaseModel):
    jobs: list[JobOut] = Field(description="A page of jobs in id order.")
    next_after: str | None = Field(description="Pass as `after` for the next page; null on the last.")


class RunOut(BaseModel):
    id: int
    job_id: str
    status: RunStatus
    trigger_source: TriggerSource
    triggered_by: str | None
    attempt: int
    parent_run_id: int | None
    scheduled_for: datetime
    due_at: datetime
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    lateness_seconds: float | None
    node: str | None = Field(description="The scheduler process that ran it.")
    exit_code: int | None
    error: str | None
    result: dict[str, Any] | None = Field(description="What the job returned, if JSON.")
    peak_memory_bytes: int | None
    cpu_time_seconds: float | None


class RunDetail(RunOut):
    output: str | None = Field(description="Captured stdout and stderr (the tail, past output_limit).")
    traceback: str | None


class RunPage(BaseModel):
    runs: list[RunOut]
    next_before_id: int | None = Field(description="Pass as before_id for the next page; null on the last.")


class RunAccepted(BaseModel):
    run_id: int
    job_id: str


class SchedulerOut(BaseModel):
    running: bool = Field(description="Whether this process runs a scheduler (a web-only process does not).")
    node: str | None
    last_loop_at: datetime | None
    loop_errors: int
    clock_skew: float | None = Field(
        None, description="Seconds the database's clock is ahead of this process's (PostgreSQL)."
    )
    clock_too_far: bool = Field(False, description="The skew is past the bound: this node claims nothing.")


class NodeOut(BaseModel):
    id: str
    hostname: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None
    live: bool


class StatusOut(BaseModel):
    scheduler: SchedulerOut
    nodes: list[NodeOut] = Field(description="Live nodes and those seen in the last day.")
    counts: dict[str, int] = Field(description="Runs in each status over the whole history.")
    active: int = Field(description="Queued and running runs.")


class PreviewOut(BaseModel):
    description: str = Field(examples=["At 03:00"])
    next: list[datetime]


class RunMarkOut(BaseModel):
    run_id: int
    at: datetime = Field(description="When the run ended (else started, else was due), in UTC.")
    error: str | None = Field(description="For a failure, the first 200 characters of its error.")


class JobStatsOut(BaseModel):
    """A job's figures over the runs whose `scheduled_for` is in [since, until)."""

    job_id: str
    since: datetime | None = Field(description="Start of the window (included); null: the first run.")
    until: datetime | None = Field(description="End of the window (excluded); null: open.")
    runs: dict[str, int] = Field(description="Runs in each status, every status listed (zeros included).")
    total: int = Field(description="Every run in the window.")
    finished: int = Field(description="Runs that have ended (all but queued and running).")
    succeeded: int
    failures: int = Field(description="Runs failed, timed out or lost.")
    success_rate: float | None = Field(
        description="succeeded / (succeeded + failures), 0 to 1; null without any of them."
    )
    median_seconds: float | None = Field(
        description="Median duration of the runs that succeeded, failed or timed out (cancelled and lost "
        "runs say nothing of how long the job takes)."
    )
    p95_seconds: float | None = Field(
        description="95th percentile of the same durations (linear interpolation between closest ranks)."
    )
    max_seconds: float | None = Field(description="Longest of the same durations.")
    last_success: RunMarkOut | None
    last_failure: RunMarkOut | None = Field(description="The latest run failed, timed out or lost.")


class StatsOut(BaseModel):
    since: datetime | None
    until: datetime | None
    jobs: list[JobStatsOut] = Field(description="Every job, in id order; those without runs have zeros.")


# ---- parameters and documented errors ------------------------------------------------------------------

JobId = Annotated[str, Path(description="The job's id.")]
RunId = Annotated[int, Path(ge=1, le=MAX_ID, description="The run's id.")]
Statuses = Annotated[list[RunStatus] | None, Query(description="Only runs in these statuses (repeatable).")]
Sources = Annotated[
    list[TriggerSource] | None, Query(description="Only runs with these trigger sources (repeatable).")
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size.")]
BeforeId = Annotated[int | None, Query(ge=1, le=MAX_ID, description="Continue below this run id.")]
# Instants as text, read by the same parser as the CLI's, so that a bad one is named in the usual 422.
Since = Annotated[
    str | None,
    Query(
        max_length=64,
        description="Only runs scheduled for this ISO-8601 instant (with an offset) or later.",
        json_schema_extra={"format": "date-time"},
    ),
]
Until = Annotated[
    str | None,
    Query(
        max_length=64,
        description="Only runs scheduled for before this ISO-8601 instant (with an offset).",
        json_schema_extra={"format": "date-time"},
    ),
]


def _storable_text(value: str | None) -> str | None:
    """Query text goes into SQL: a NUL would make PostgreSQL fail the query instead of matching nothing."""
    if value is not None:
        _check_text(value)
    return value


QueryText = AfterValidator(_storable_text)
JobStateFilter = Annotated[JobState | None, Query(description="Only jobs in this state.")]
TagFilter = Annotated[str | None, Query(max_length=200, description="Only jobs with this tag."), QueryText]
TextFilter = Annotated[
    str | None, Query(max_length=200, description="Part of the id or name (case-insensitive)."), QueryText
]
AfterJobId = Annotated[
    str | None,
    Query(max_length=200, description="Continue after this job id: the `next_after` of the previous page."),
    QueryText,
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Repeating a request with the same key (for 24 h) returns its run instead of a new one.",
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=100,
        description='The job\'s ETag (its version, "3"): the change is refused (412) if the job has changed.',
    ),
]

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The body cannot be read (not UTF-8 or not JSON)"},
    401: {"model": ErrorOut, "description": "No valid credentials"},
    403: {"model": ErrorOut, "description": "Not allowed (admin needed, or CSRF token missing)"},
    422: {"model": ErrorOut, "description": "Bad input; `field` names what is wrong"},
    503: {"model": ErrorOut, "description": "The database is unavailable"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "No such job or run"}}
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"model": ErrorOut, "description": "Conflict"}}
PRECONDITION_FAILED: dict[int | str, dict[str, Any]] = {
    412: {"model": ErrorOut, "description": "If-Match does not name the job's current version"}
}


class ChannelIn(_Strict):
    """A channel to add, or whose URL to replace."""

    url: Any = Field(
        description="An Apprise URL (mailtos://…, slack://…, json://…); kept secret, shown masked.",
        json_schema_extra={"type": "string"},
    )


class ChannelOut(BaseModel):
    name: str
    url: str = Field(description="Masked: passwords and tokens are never shown.")
    origin: str = Field(description="Where it was declared: api, cli, or a configuration file.")
    created_at: datetime
    updated_at: datetime
    last_sent_at: datetime | None


class ChannelList(BaseModel):
    channels: list[ChannelOut]


class ChannelTestOut(BaseModel):
    delivered: bool
    error: str | None = Field(description="What the service answered, when it did not take the message.")


class AlertOut(BaseModel):
    id: int
    kind: str
    channel: str
    job_id: str | None
    run_id: int | None
    status: str = Field(description="pending, sending, delivered or failed.")
    created_at: datetime
    due_at: datetime = Field(description="Not sent before this: a retry's backoff or the channel's window.")
    attempts: int
    delivered_at: datetime | None
    last_error: str | None
    attempt_log: list[dict[str, Any]] = Field(description="Every failed attempt: its instant and error.")
    facts: dict[str, Any] = Field(description="What the message says (job, run, error, output tail).")


class AlertPage(BaseModel):
    alerts: list[AlertOut]
    next_before_id: int | None = Field(description="Pass as before_id for the next page; null on the last.")


ChannelName = Annotated[str, Path(description="The channel's name.")]


class CheckinIn(_Strict):
    """A run of a check-in job, reported by the job itself."""

    event: str = Field(description="start, success or fail.", examples=["success"])
    run_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="With success or fail: the run a start check-in began."
    )
    exit_code: int | None = Field(None, description="The command's exit status.")
    output: str | None = Field(
        None, description="Its output (the tail is kept, past the job's output_limit)."
    )
    duration: Duration = Field(None, description="How long it took, for a success or fail without a start.")


class CheckinOut(BaseModel):
    run_id: int
    job_id: str
    status: RunStatus
