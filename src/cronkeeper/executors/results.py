"""What a job returns becomes the run's result: a JSON object such as
``{"items_processed": 10, "items_succeeded": 9, "items_failed": 1}``."""

from __future__ import annotations

import json
from typing import Any


def to_result(value: Any) -> dict[str, Any] | None:
    """A JSON-ready dict for the run record: dicts as they are, other values under ``"value"``.

    Values JSON cannot hold are kept as their ``repr`` so a job's return never fails a run that succeeded.
    """
    if value is None:
        return None
    wrapped = value if isinstance(value, dict) else {"value": value}
    try:
        # NaN and infinities are not JSON; PostgreSQL's json type refuses them.
        return json.loads(json.dumps(wrapped, allow_nan=False))  # type: ignore[no-any-return]
    except (TypeError, ValueError):
        return {"value": repr(value)}
