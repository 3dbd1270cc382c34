"""The one validation layer, and the stored form of a job.

Every face passes a plain mapping in one shape to :func:`build_spec` (:mod:`.validate`); the database keeps
that shape again (:func:`spec_to_dict`, read back by :func:`spec_from_stored` in :mod:`.stored`); bulk loads
validate one job per shape (:class:`SpecBatch` in :mod:`.batch`).  Errors name the field and the reason, and
nothing is written.
"""

from __future__ import annotations

from cronkeeper.specs.batch import BulkJob, SpecBatch
from cronkeeper.specs.stored import spec_from_stored, spec_to_dict
from cronkeeper.specs.validate import (
    JOB_ID,
    KNOWN_KEYS,
    SCHEDULE_KEYS,
    TARGET_KEYS,
    TEXT_LIMITS,
    build_spec,
    build_trigger,
    check_not_past,
    parse_cron,
    parse_zone,
)

__all__ = [
    "JOB_ID",
    "KNOWN_KEYS",
    "SCHEDULE_KEYS",
    "TARGET_KEYS",
    "TEXT_LIMITS",
    "BulkJob",
    "SpecBatch",
    "build_spec",
    "build_trigger",
    "check_not_past",
    "parse_cron",
    "parse_zone",
    "spec_from_stored",
    "spec_to_dict",
]
