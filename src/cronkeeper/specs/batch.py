"""Bulk loads: many job definitions that differ only in identity and arguments, validated once per shape."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cronkeeper.exceptions import ValidationError
from cronkeeper.models import CallableTarget, JobSpec
from cronkeeper.specs.stored import spec_to_dict
from cronkeeper.specs.validate import build_spec, call_arguments, job_id_of, tags_of, text_of

# What may differ between jobs built from one template by :class:`SpecBatch`.
PER_JOB_KEYS = frozenset({"id", "name", "description", "tags", "args", "kwargs"})
_OWN_BESIDES_ID = PER_JOB_KEYS - {"id"}
# A job's own fields, when its definition gives only its id: what the general path writes for it.
_NOTHING_OWN = '"name": "", "description": "", "tags": []'
_NOTHING_OWN_CALL = f'{_NOTHING_OWN}, "args": [], "kwargs": {{}}'


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
        if _OWN_BESIDES_ID.isdisjoint(data):  # only its id, as in most bulk loads: no fields to check
            job_id = job_id_of(data.get("id"))
            nothing = _NOTHING_OWN_CALL if isinstance(shape.target, CallableTarget) else _NOTHING_OWN
            return BulkJob(job_id, "", f'{{"id": {json.dumps(job_id)}, {nothing}, {shared[1:]}', shape)
        own: dict[str, Any] = {
            "id": job_id_of(data.get("id")),
            "name": text_of(data, "name"),
            "description": text_of(data, "description"),
            "tags": list(tags_of(data.get("tags", ()))),
        }
        if isinstance(shape.target, CallableTarget):
            args, kwargs = call_arguments(data)
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
