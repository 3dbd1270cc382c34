"""Incidents and the alerts they call for, written inside the transaction that records the outcomes.

An alert is a row (DESIGN invariant 8): the outcome, the incident it opens, extends or closes, and the alert
rows for the job's channels commit together or not at all, so a crash between recording and delivering loses
nothing.  The rules are :func:`cronkeeper.incidents.judge`; this module reads and writes what they need.

Cost on the path of every run: one indexed query per batch of outcomes (the open incidents of the batch's
jobs).  Job specs and the defaults are read only for a batch that holds a bad outcome, closes an incident or
has a job that asked to hear of its successes.
"""

from __future__ import annotations

import itertools
import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, bindparam, false, insert, or_, select, text, update

from cronkeeper.incidents import BAD_STATUSES, IncidentState, NotifyPolicy, judge, resolve
from cronkeeper.models import EXTERNAL, AlertKind, JobSpec, NotifyOptions, Run, RunStatus, TriggerSource
from cronkeeper.specs.stored import spec_from_stored, stored_notify
from cronkeeper.specs.validate import long_running_of
from cronkeeper.store.rows import AnyRow, run_from_row
from cronkeeper.store.schema import OPEN_INCIDENT_SQL, alerts, incidents, jobs, runs, settings

# The ck_settings key holding the notification defaults of every job (a job's stored notify options).
NOTIFY_DEFAULTS_KEY = "notify.defaults"
PENDING = "pending"
# How much of a run's error and output an alert carries: enough to see what went wrong in a message.
ERROR_EXCERPT = 1000
OUTPUT_TAIL = 2000
# The first key of PostgreSQL advisory locks that guard opening an incident (the second: the job id's hash).
INCIDENT_LOCKS = 0x636B  # "ck"
# Overdue jobs (or long runs) judged per look: a look every heartbeat catches up with more.
OVERDUE_BATCH = 200
# Successes close incidents: how many open ones are read at once to see whether a batch of them closes any.
_OPEN_SCAN = 1000
# Missed fires of one job counted per look (a job silent for long, fires every second, is counted on).
OVERDUE_FIRES = 100
# Runs shorter than this are never "long": no threshold below it is applied, and no younger run is looked at.
LONG_RUN_FLOOR = timedelta(seconds=10)
# The median behind "3x" is of this many of the job's latest successful runs.
MEDIAN_OF = 20


# Not frozen: one is made per run, and a frozen dataclass's __init__ costs three times as much.
@dataclass(slots=True)
class FinalOutcome:
    """A run's last word, with what a message about it needs to say; retried failures are not final.  A
    fire no scheduler started has no run (``run_id`` None): see :func:`flag_overdue`."""

    run_id: int | None
    job_id: str
    status: RunStatus
    scheduled_for: datetime
    attempt: int
    started_at: datetime | None
    finished_at: datetime | None
    triggered_by: str | None = None
    exit_code: int | None = None
    error: str | None = None
    output: str | None = None
    # The job asked to hear of every success (its own notify_on has "succeeded").
    reports_every_run: bool = False


@dataclass(slots=True)
class _Open:
    """An incident as it stands while a batch is judged (one job's outcomes may follow each other)."""

    id: int | None
    opened_at: datetime
    first_run_id: int | None
    state: IncidentState
    last_run_id: int | None
    changed: bool = False
    overdue_for: datetime | None = None


def track_outcomes(conn: Connection, outcomes: Sequence[FinalOutcome], *, now: datetime) -> int:
    """Open, extend and close the incidents of ``outcomes`` and write the alerts they call for; returns how
    many alerts were written (the caller wakes the courier when any was)."""
    judged = [
        o
        for o in outcomes
        if o.status in BAD_STATUSES or o.status is RunStatus.SUCCEEDED or (o.reports_every_run and o.output)
    ]
    if not judged:
        return 0
    if not may_change_incidents(conn, ((o.job_id, o.status, o.reports_every_run) for o in judged)):
        return 0
    bad = [o.job_id for o in judged if o.status in BAD_STATUSES]
    current = _open_incidents(conn, sorted({o.job_id for o in judged}), may_open=bad)
    return _track(conn, judged, current, now=now)


def may_change_incidents(conn: Connection, outcomes: Iterable[tuple[str, RunStatus, bool]]) -> bool:
    """Whether outcomes, each ``(job id, status, whether its job asked to hear of every run)``, may open,
    extend or close an incident or call for an alert.  Plain successes of jobs without an open incident
    cannot: nearly every outcome.  Asked before :func:`track_outcomes` (which asks it too), it spares the
    caller making a :class:`FinalOutcome` of each run for nothing."""
    job_ids: set[str] = set()
    for job_id, status, reports_every_run in outcomes:
        if status is not RunStatus.SUCCEEDED or reports_every_run:
            return True
        job_ids.add(job_id)
    return bool(job_ids) and _any_open(conn, sorted(job_ids))


def _any_open(conn: Connection, job_ids: list[str]) -> bool:
    """Whether one of these jobs may have an open incident: read from the few open ones (the open
    incidents' own index), rather than looked up job by job; True when too many are open to read."""
    open_jobs = set(
        conn.execute(
            select(incidents.c.job_id).where(text(OPEN_INCIDENT_SQL)).limit(_OPEN_SCAN + 1)
        ).scalars()
    )
    return len(open_jobs) > _OPEN_SCAN or not open_jobs.isdisjoint(job_ids)


def _track(conn: Connection, judged: list[FinalOutcome], current: dict[str, _Open], *, now: datetime) -> int:
    needs_policy = {
        o.job_id for o in judged if o.status in BAD_STATUSES or o.reports_every_run or o.job_id in current
    }
    if not needs_policy:
        return 0
    policies, about = _policies(conn, sorted(needs_policy))
    written = 0
    closing = _Closing(now)
    for outcome in judged:
        if outcome.job_id in needs_policy and outcome.job_id not in about:
            continue  # the job was removed while its run went on: it has no incidents any more
        written += _judge_one(conn, outcome, current, policies.get(outcome.job_id), about, closing)
    closing.write(conn)
    _save(conn, current)
    return written


def _overdue_query(now: datetime, margin: timedelta) -> Select[Any]:
    return (
        select(jobs.c.id, jobs.c.spec, jobs.c.next_fire_at, jobs.c.next_due_at, jobs.c.runs_on)
        .where(jobs.c.enabled, jobs.c.paused == false(), jobs.c.next_due_at < now - margin)
        .order_by(jobs.c.next_due_at)
        .limit(OVERDUE_BATCH)
    )


def any_overdue(conn: Connection, *, now: datetime, margin: timedelta) -> bool:
    """Whether some job may be overdue (due more than ``margin`` ago); one step of the index."""
    return conn.execute(_overdue_query(now, margin).limit(1)).first() is not None


def flag_overdue(conn: Connection, *, now: datetime, margin: timedelta) -> int:
    """Count as missed the fires no scheduler has started: those of jobs due more than their misfire grace
    plus ``margin`` ago (the lease: a live node would have claimed them by then), each fire once
    (``overdue_for`` is the last one counted), however many nodes watch; returns how many alerts were written.

    This is how silence is heard while the node that should run a job is down or wedged, when only a
    scheduler object that is gone could run it, or when a check-in job stops reporting: every fire that goes
    by counts, so ``notify_after`` and ``every_failure`` mean what they say.  A node starting after an outage
    reports the fires missed meanwhile through its claims instead (``missed`` records).
    """
    rows = conn.execute(_overdue_query(now, margin).with_for_update(skip_locked=True)).all()
    late: dict[str, tuple[AnyRow, JobSpec]] = {}
    for row in rows:
        spec = spec_from_stored(_stored(row.spec))
        if row.next_due_at + spec.misfire_grace + margin <= now:
            late[row.id] = (row, spec)
    if not late:
        return 0
    current = _open_incidents(conn, sorted(late), may_open=sorted(late))
    outcomes: list[FinalOutcome] = []
    counted: dict[str, datetime] = {}
    for job_id, (row, spec) in late.items():
        incident = current.get(job_id)
        since = incident.overdue_for if incident is not None else None
        fires = _missed_fires(spec, row.next_fire_at, since, now - spec.misfire_grace - margin)
        if fires:
            counted[job_id] = fires[-1]
            outcomes.extend(_overdue(row, fire, now) for fire in fires)
    written = _track(conn, outcomes, current, now=now)
    for job_id, last in counted.items():
        incident = current.get(job_id)
        if incident is not None:
            incident.overdue_for, incident.changed = last, True
    _save(conn, current)
    return written


def _silent_checkins_query(now: datetime) -> Select[Any]:
    """Check-in runs started over HTTP (no node keeps them alive) and going longer than the floor."""
    return (
        select(runs)
        .where(
            runs.c.status == RunStatus.RUNNING.value,
            runs.c.trigger_source == TriggerSource.CHECKIN.value,
            runs.c.owner.is_(None),
            runs.c.started_at < now - LONG_RUN_FLOOR,
        )
        .limit(OVERDUE_BATCH)
    )


def any_silent_checkins(conn: Connection, *, now: datetime) -> bool:
    return conn.execute(_silent_checkins_query(now).limit(1)).first() is not None


def end_silent_checkins(conn: Connection, *, now: datetime) -> int:
    """End as ``timed_out`` the check-in runs whose end was not reported within their job's ``timeout``
    (a start check-in with no end: the reporter died, or forgot); returns the alerts written.  A job
    without a timeout leaves them running, and ``long_running`` tells of them."""
    rows = conn.execute(_silent_checkins_query(now).with_for_update(skip_locked=True)).all()
    specs = _specs(conn, sorted({row.job_id for row in rows}))
    ended = []
    for row in rows:
        timeout = (specs.get(row.job_id) or {}).get("timeout")
        if timeout is not None and row.started_at + timedelta(seconds=float(timeout)) <= now:
            ended.append(row.id)
    if not ended:
        return 0
    conn.execute(
        update(runs)
        .where(runs.c.id.in_(ended), runs.c.status == RunStatus.RUNNING.value)
        .values(
            status=RunStatus.TIMED_OUT.value,
            finished_at=now,
            error="timed out: no end was reported within the job's timeout",
        )
    )
    done = conn.execute(select(runs).where(runs.c.id.in_(ended))).all()
    return track_outcomes(conn, [run_outcome(run_from_row(row)) for row in done], now=now)


def _missed_fires(
    spec: JobSpec, first: datetime | None, counted_until: datetime | None, until: datetime
) -> list[datetime]:
    """The fires from ``first`` (or after the last one counted) up to ``until``, at most OVERDUE_FIRES a
    look (the next look counts on)."""
    if first is None:
        return []
    if counted_until is not None and counted_until >= first:
        ahead = spec.trigger.fires_after(counted_until)
    else:
        ahead = itertools.chain([first], spec.trigger.fires_after(first))
    return list(itertools.islice(itertools.takewhile(lambda fire: fire <= until, ahead), OVERDUE_FIRES))


def _long_runs_query(now: datetime, owner: str) -> Select[Any]:
    return (
        select(runs.c.id, runs.c.job_id, runs.c.started_at, runs.c.scheduled_for, runs.c.attempt)
        .where(
            or_(runs.c.owner == owner, runs.c.trigger_source == TriggerSource.CHECKIN.value),
            runs.c.status == RunStatus.RUNNING.value,
            runs.c.started_at < now - LONG_RUN_FLOOR,
        )
        .limit(OVERDUE_BATCH)
    )


def any_long_runs(conn: Connection, *, now: datetime, owner: str) -> bool:
    """Whether ``owner`` has a run (or any check-in run is) going longer than the shortest threshold."""
    return conn.execute(_long_runs_query(now, owner).limit(1)).first() is not None


def flag_long_runs(conn: Connection, *, now: datetime, owner: str) -> int:
    """Alert, once per run, the runs still going past their job's ``long_running``: a fixed time, or a
    multiple of the median of its recent successful runs.  A scheduler looks at its own runs (a run whose
    owner stopped is reported lost instead); the runs of check-in jobs, which no scheduler owns, every node
    looks at, one at a time (rows locked, SKIP LOCKED)."""
    rows = conn.execute(_long_runs_query(now, owner).with_for_update(skip_locked=True)).all()
    if not rows:
        return 0
    told = set(
        conn.execute(
            select(alerts.c.run_id).where(
                alerts.c.run_id.in_([row.id for row in rows]), alerts.c.kind == AlertKind.LONG_RUNNING.value
            )
        ).scalars()
    )
    rows = [row for row in rows if row.id not in told]
    specs = _specs(conn, sorted({row.job_id for row in rows}))
    written = 0
    for row in rows:
        spec = specs.get(row.job_id)
        limit = None if spec is None else _long_after(conn, row.job_id, spec)
        if limit is not None and row.started_at + limit <= now:
            written += _alert_long_run(conn, row, spec or {}, limit, now)
    return written


def _specs(conn: Connection, job_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The stored forms of these jobs' specs, by id (jobs that are gone are left out)."""
    found = conn.execute(select(jobs.c.id, jobs.c.spec).where(jobs.c.id.in_(job_ids)))
    return {row.id: _stored(row.spec) for row in found}


def _stored(spec: Any) -> dict[str, Any]:
    """A ``jobs.spec`` value as a mapping (SQLite's driver may hand the JSON back as text)."""
    return spec if isinstance(spec, dict) else dict(json.loads(spec))


def _long_after(conn: Connection, job_id: str, spec: dict[str, Any]) -> timedelta | None:
    rule = long_running_of(spec.get("long_running"))
    if rule is None or rule.after is not None:
        return None if rule is None else rule.after
    assert rule.times_median is not None
    recent = conn.execute(
        select(runs.c.started_at, runs.c.finished_at)
        .where(runs.c.job_id == job_id, runs.c.status == RunStatus.SUCCEEDED.value)
        .order_by(runs.c.id.desc())
        .limit(MEDIAN_OF)
    ).all()
    durations = [row.finished_at - row.started_at for row in recent if row.started_at and row.finished_at]
    if not durations:
        return None
    median: timedelta = statistics.median(durations)
    return max(median * rule.times_median, LONG_RUN_FLOOR)


def _alert_long_run(
    conn: Connection, row: AnyRow, spec: dict[str, Any], limit: timedelta, now: datetime
) -> int:
    policy = resolve(stored_notify(spec), notify_defaults(conn))
    if policy is None or AlertKind.LONG_RUNNING not in policy.on:
        return 0
    outcome = FinalOutcome(
        run_id=row.id,
        job_id=row.job_id,
        status=RunStatus.RUNNING,
        scheduled_for=row.scheduled_for,
        attempt=row.attempt,
        started_at=row.started_at,
        finished_at=None,
        error=f"still running after {_seconds(now - row.started_at)} (long past {_seconds(limit)})",
    )
    about = {"job_name": spec.get("name") or row.job_id, "schedule": _schedule_of(spec)}
    facts = _facts(AlertKind.LONG_RUNNING, outcome, None, about)
    conn.execute(
        insert(alerts),
        [
            _alert_row(AlertKind.LONG_RUNNING, channel, outcome, None, facts, now)
            for channel in policy.channels
        ],
    )
    return len(policy.channels)


def _seconds(span: timedelta) -> str:
    total = int(span.total_seconds())
    return (
        f"{total // 3600}h{total % 3600 // 60:02d}m" if total >= 3600 else f"{total // 60}m{total % 60:02d}s"
    )


def _overdue(row: AnyRow, fire: datetime, now: datetime) -> FinalOutcome:
    ago = f"due {int((now - fire).total_seconds())} s ago"
    if row.runs_on == EXTERNAL:
        error = f"no check-in: {ago}, and it has not reported a run since"
    elif row.runs_on:
        error = (
            f"not started: {ago}; only the scheduler object {row.runs_on} can run it (a bound method, "
            "lambda or local function), and it is gone"
        )
    else:
        error = (
            f"not started: {ago} and no scheduler has started it; is any scheduler running on this database?"
        )
    return FinalOutcome(
        run_id=None,
        job_id=row.id,
        status=RunStatus.MISSED,
        scheduled_for=fire,
        attempt=0,
        started_at=None,
        finished_at=None,
        error=error,
    )


def _judge_one(
    conn: Connection,
    outcome: FinalOutcome,
    current: dict[str, _Open],
    policy: NotifyPolicy | None,
    about: dict[str, dict[str, Any]],
    closing: _Closing,
) -> int:
    now = closing.now
    before = current.get(outcome.job_id)
    verdict = judge(outcome.status, before.state if before else None, policy, has_output=bool(outcome.output))
    closes = verdict.incident is None and before is not None
    if verdict.incident is None:
        if before is not None:
            closing.add(before, outcome.run_id)
            del current[outcome.job_id]
    elif before is None:
        before = current[outcome.job_id] = _Open(
            None, now, outcome.run_id, verdict.incident, outcome.run_id, changed=True
        )
    else:
        before.state, before.last_run_id, before.changed = verdict.incident, outcome.run_id, True
    if verdict.alert is None or policy is None:
        return 0
    if before is not None and before.id is None:
        # The alert names its incident, which must then be kept: closed already if this outcome ends it (it
        # opened in this batch: a success that reports every run right after a failure).
        closing.write(conn)  # first: the job's incident this batch closed must not be open beside the new one
        ended = (now, outcome.run_id) if closes else (None, None)
        before.id = _insert_incident(conn, outcome.job_id, before, ended)
        before.changed = False
    facts = _facts(verdict.alert, outcome, before, about.get(outcome.job_id, {}))
    incident_id = before.id if before else None
    rows = [
        _alert_row(verdict.alert, channel, outcome, incident_id, facts, now) for channel in policy.channels
    ]
    conn.execute(insert(alerts), rows)
    return len(rows)


def _alert_row(
    kind: AlertKind,
    channel: str,
    outcome: FinalOutcome,
    incident_id: int | None,
    facts: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    return {
        "kind": kind.value,
        "channel": channel,
        "job_id": outcome.job_id,
        "run_id": outcome.run_id,
        "incident_id": incident_id,
        "facts": facts,
        "status": PENDING,
        "created_at": now,
        "due_at": now,
    }


def _open_incidents(
    conn: Connection, job_ids: list[str], *, may_open: Sequence[str] = ()
) -> dict[str, _Open]:
    """The open incidents of ``job_ids``, locked until the transaction ends, so that two nodes recording
    outcomes of one job at once count both.  On PostgreSQL the jobs in ``may_open`` (bad outcomes, which may
    open an incident where none is) are also locked by id, so that two nodes cannot both open one; SQLite
    writers take turns anyway."""
    if may_open and conn.dialect.name == "postgresql":
        conn.execute(
            text(
                "SELECT pg_advisory_xact_lock(:space, hashtext(job_id)) "
                "FROM unnest(CAST(:ids AS text[])) AS job_id ORDER BY job_id"
            ),
            {"space": INCIDENT_LOCKS, "ids": sorted(set(may_open))},
        )
    rows = conn.execute(
        select(incidents)
        .where(incidents.c.job_id.in_(job_ids), incidents.c.closed_at.is_(None))
        .order_by(incidents.c.job_id)
        .with_for_update()
    )
    return {
        row.job_id: _Open(
            row.id,
            row.opened_at,
            row.first_run_id,
            IncidentState(row.failures, row.alerted),
            row.last_run_id,
            overdue_for=row.overdue_for,
        )
        for row in rows
    }


def _policies(
    conn: Connection, job_ids: list[str]
) -> tuple[dict[str, NotifyPolicy], dict[str, dict[str, Any]]]:
    """Each job's resolved policy (jobs nobody is told about are left out), and its name for messages."""
    defaults = notify_defaults(conn)
    policies: dict[str, NotifyPolicy] = {}
    about: dict[str, dict[str, Any]] = {}
    for job_id, spec in _specs(conn, job_ids).items():
        policy = resolve(stored_notify(spec), defaults)
        if policy is not None:
            policies[job_id] = policy
        about[job_id] = {"job_name": spec.get("name") or job_id, "schedule": _schedule_of(spec)}
    return policies, about


def notify_defaults(conn: Connection) -> NotifyOptions:
    value = conn.execute(select(settings.c.value).where(settings.c.key == NOTIFY_DEFAULTS_KEY)).scalar()
    return NotifyOptions() if value is None else stored_notify(json.loads(value))


def _schedule_of(spec: dict[str, Any]) -> str:
    if spec.get("cron") is not None:
        return f"cron {spec['cron']} ({spec.get('timezone') or 'UTC'})"
    if spec.get("every") is not None:
        return f"every {spec['every']:g} s"
    return f"once at {spec.get('at')}"


def _facts(
    kind: AlertKind, outcome: FinalOutcome, incident: _Open | None, about: dict[str, Any]
) -> dict[str, Any]:
    duration = (
        (outcome.finished_at - outcome.started_at).total_seconds()
        if outcome.started_at and outcome.finished_at
        else None
    )
    return {
        "kind": kind.value,
        "job_id": outcome.job_id,
        "job_name": about.get("job_name", outcome.job_id),
        "schedule": about.get("schedule"),
        "run_id": outcome.run_id,
        "status": outcome.status.value,
        "attempt": outcome.attempt,
        "scheduled_for": outcome.scheduled_for.isoformat(),
        "started_at": _iso(outcome.started_at),
        "finished_at": _iso(outcome.finished_at),
        "duration": duration,
        "exit_code": outcome.exit_code,
        "triggered_by": outcome.triggered_by,
        "error": (outcome.error or "")[:ERROR_EXCERPT] or None,
        "output_tail": (outcome.output or "")[-OUTPUT_TAIL:] or None,
        "failures": incident.state.failures if incident else None,
        "incident_opened_at": incident.opened_at.isoformat() if incident else None,
    }


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.isoformat()


def _incident_row(job_id: str, incident: _Open) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "opened_at": incident.opened_at,
        "first_run_id": incident.first_run_id,
        "last_run_id": incident.last_run_id,
        "failures": incident.state.failures,
        "alerted": incident.state.alerted,
        "overdue_for": incident.overdue_for,
    }


def _insert_incident(
    conn: Connection, job_id: str, incident: _Open, ended: tuple[datetime | None, int | None]
) -> int:
    """Insert an incident, open, or closed at ``ended`` (an instant and the run that closed it)."""
    closed_at, closed_by = ended
    row = _incident_row(job_id, incident) | {"closed_at": closed_at, "closed_by_run_id": closed_by}
    result = conn.execute(insert(incidents).values(row))
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


class _Closing:
    """Incidents a batch of outcomes closed, written in one statement: a node that falls behind records
    missed fires, which open an incident per job, and the next success of each job closes it; a statement
    per close made the catching up slower than the runs (a third of the loop's time at 10,000 fires a
    second).  Written before any incident is inserted, as at most one per job may be open."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._rows: list[dict[str, Any]] = []

    def add(self, incident: _Open, run_id: int | None) -> None:
        if incident.id is not None:  # one opened in this batch is not written yet (see _judge_one)
            self._rows.append({"iid": incident.id, "run": run_id})

    def write(self, conn: Connection) -> None:
        if self._rows:
            conn.execute(
                update(incidents)
                .where(incidents.c.id == bindparam("iid"))
                .values(closed_at=self.now, closed_by_run_id=bindparam("run")),
                self._rows,
            )
            self._rows = []


def _save(conn: Connection, current: dict[str, _Open]) -> None:
    """Write the incidents a batch opened or changed, in three statements whatever their number: a burst of
    missed fires (an overloaded or restarted node) opens one per job, and a statement each made recording
    them slower than the runs they are about."""
    new = {
        job_id: incident for job_id, incident in current.items() if incident.changed and incident.id is None
    }
    opened = [_incident_row(job_id, incident) for job_id, incident in new.items()]
    changed = [
        {
            "iid": incident.id,
            "failures": incident.state.failures,
            "alerted": incident.state.alerted,
            "last": incident.last_run_id,
            "overdue": incident.overdue_for,
        }
        for incident in current.values()
        if incident.changed and incident.id is not None
    ]
    if opened:
        conn.execute(insert(incidents), opened)
        # Their ids, for a later save in the same transaction (at most one incident per job is open).
        for job_id, incident_id in conn.execute(
            select(incidents.c.job_id, incidents.c.id).where(
                incidents.c.job_id.in_(new), text(OPEN_INCIDENT_SQL)
            )
        ):
            new[job_id].id = incident_id
    for incident in current.values():
        incident.changed = False
    if changed:
        conn.execute(
            update(incidents)
            .where(incidents.c.id == bindparam("iid"))
            .values(
                failures=bindparam("failures"),
                alerted=bindparam("alerted"),
                last_run_id=bindparam("last"),
                overdue_for=bindparam("overdue"),
            ),
            changed,
        )


def run_outcome(run: Run) -> FinalOutcome:
    """A run as a final outcome: a fire a claim recorded missed, a run the reaper marked lost, a check-in."""
    return FinalOutcome(
        run_id=run.id,
        job_id=run.job_id,
        status=run.status,
        scheduled_for=run.scheduled_for,
        attempt=run.attempt,
        started_at=run.started_at,
        finished_at=run.finished_at,
        triggered_by=run.triggered_by,
        exit_code=run.exit_code,
        error=run.error,
        output=run.output,
    )
