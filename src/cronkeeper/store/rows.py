"""Reading rows back: runs as :class:`Run` values, stored specs as :class:`JobSpec` (cached per version)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, and_, exists, or_, select

from cronkeeper.models import ACTIVE_STATUSES, JobSpec, Run, RunStatus, TriggerSource
from cronkeeper.specs import spec_from_stored
from cronkeeper.store.schema import jobs, runs

# Rows of any shape: the store reads columns by name.
AnyRow = Row[*tuple[Any, ...]]

ACTIVE = [status.value for status in ACTIVE_STATUSES]
ACTIVE_RUN = runs.c.status.in_(ACTIVE)


_ACTIVE_RUNS = runs.alias("active_runs")
# A queued catch-up run whose job has a run under way: it starts in turn, when that one ends, so claims and
# the loop's wake-ups pass over it until then.
WAITING_ITS_TURN = and_(
    runs.c.trigger_source == TriggerSource.CATCHUP.value,
    exists().where(
        _ACTIVE_RUNS.c.job_id == runs.c.job_id,
        _ACTIVE_RUNS.c.status.in_(ACTIVE),
        _ACTIVE_RUNS.c.owner.is_not(None),
    ),
)


def job_runs_here(instance_id: str | None) -> ColumnElement[bool]:
    """Jobs the scheduler object ``instance_id`` may claim: those any node may run, and its own."""
    if instance_id is None:
        return jobs.c.runs_on.is_(None)
    return or_(jobs.c.runs_on.is_(None), jobs.c.runs_on == instance_id)


def run_of_job_elsewhere(instance_id: str | None) -> ColumnElement[bool]:
    """Runs whose job only another scheduler object can run (a queued run waits for that object)."""
    elsewhere: ColumnElement[bool] = jobs.c.runs_on.is_not(None)
    if instance_id is not None:
        elsewhere = and_(elsewhere, jobs.c.runs_on != instance_id)
    return exists().where(jobs.c.id == runs.c.job_id, elsewhere)


class SpecCache:
    """Parsed specs by job id and version: claims happen constantly, and parsing a cron expression is not
    free.  A new version (any edit) replaces the entry."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[int, JobSpec]] = {}

    def get(self, job_id: str, version: int, data: dict[str, Any]) -> JobSpec:
        cached = self._cache.get(job_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        spec = spec_from_stored(data)
        self._cache[job_id] = (version, spec)
        return spec

    def of(
        self, conn: Connection, versions: list[tuple[str, int]], other_ids: set[str]
    ) -> dict[str, JobSpec]:
        """Specs of the given jobs, from the cache when its version is current; one query for the rest."""
        specs: dict[str, JobSpec] = {}
        missing = set(other_ids)
        for job_id, version in versions:
            cached = self._cache.get(job_id)
            if cached is not None and cached[0] == version:
                specs[job_id] = cached[1]
            else:
                missing.add(job_id)
        missing -= specs.keys()
        if missing:
            rows = conn.execute(select(jobs.c.id, jobs.c.version, jobs.c.spec).where(jobs.c.id.in_(missing)))
            specs.update({row.id: self.get(row.id, row.version, row.spec) for row in rows})
        return specs

    def forget(self, job_id: str) -> None:
        self._cache.pop(job_id, None)


def run_from_mapping(values: Mapping[Any, Any]) -> Run:
    """A Run from column values: a row read back, or the values a claim just inserted (which name only some
    columns; the others are still empty)."""
    return Run(
        id=values["id"],
        job_id=values["job_id"],
        scheduled_for=values["scheduled_for"],
        attempt=values["attempt"],
        status=RunStatus(values["status"]),
        trigger_source=TriggerSource(values["trigger_source"]),
        due_at=values["due_at"],
        queued_at=values["queued_at"],
        **{name: values.get(name) for name in _OPTIONAL_RUN_FIELDS},
    )


def run_from_row(row: AnyRow) -> Run:
    return run_from_mapping(row._mapping)


# Run's fields with a default, its outcome's among them: columns that may be empty, or not yet written.
_OPTIONAL_RUN_FIELDS = tuple(item.name for item in fields(Run) if item.default is not MISSING)
