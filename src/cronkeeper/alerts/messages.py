"""Alerts to messages: Jinja2 templates (a title, a text body, an HTML body for e-mail) that a deployment can
override from a folder of its own, with the same file names (``title.txt``, ``body.txt``, ``body.html``).

Everything in an alert's facts came from a job or a run (names, errors, output): the HTML body escapes it, and
the title is one line whatever a job's name holds, so that no run can write headers into an e-mail.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    select_autoescape,
)

from cronkeeper.alerts.channels import Message

TITLE_LIMIT = 200
# Alerts of one message shown in full; the others are counted.
LISTED = 20
_HEADLINES = {
    "failed": "failed",
    "timed_out": "timed out",
    "lost": "lost (its process died)",
    "missed": "missed its start",
    "long_running": "still running",
    "succeeded": "succeeded",
    "recovered": "recovered",
    "output": "wrote output",
    "test": "test message",
    "report": "report",
}


class Renderer:
    """Renders alerts with the package's templates, or a folder's where it has one of the same name."""

    def __init__(self, *, templates: Path | None = None, public_url: str | None = None) -> None:
        loaders: list[Any] = [PackageLoader("cronkeeper.alerts", "templates")]
        if templates is not None:
            loaders.insert(0, FileSystemLoader(templates))
        self._env = Environment(
            loader=ChoiceLoader(loaders),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )
        self._env.globals.update(headline=headline, percent=percent, seconds=seconds)
        self._public_url = public_url.rstrip("/") if public_url else None

    def render(self, facts: Sequence[dict[str, Any]]) -> Message:
        """One message for one or several alerts to one channel (several are grouped, not sent apart).  The
        templates get ``alerts`` (the first ``LISTED`` in full), ``total``, and ``more``: the rest, counted
        by job and kind (with their ``alert_ids``), so that a flood stays one readable message."""
        alerts = [self._with_link(item) for item in facts]
        shown, rest = alerts[:LISTED], alerts[LISTED:]
        counted: dict[tuple[str, str], list[Any]] = {}
        for alert in rest:
            counted.setdefault((alert["job_name"], alert["kind"]), []).append(alert["alert_id"])
        more = [
            {"job_name": name, "kind": kind, "count": len(ids), "alert_ids": ids}
            for (name, kind), ids in counted.items()
        ]
        given = {"alerts": shown, "total": len(alerts), "more": more}
        title = self._env.get_template("title.txt").render(**given)
        return Message(
            title=" ".join(title.split())[:TITLE_LIMIT],
            text=self._env.get_template("body.txt").render(**given).strip() + "\n",
            html=self._env.get_template("body.html").render(**given),
        )

    def _with_link(self, facts: dict[str, Any]) -> dict[str, Any]:
        base: dict[str, Any] = dict.fromkeys(_FACT_KEYS)
        base.update(facts)
        run_id = facts.get("run_id")
        base["link"] = f"{self._public_url}/runs/{run_id}" if self._public_url and run_id else None
        base["job_name"] = base["job_name"] or base["job_id"] or "cronkeeper"
        for job in base.get("jobs") or ():  # a report: links to each job's last failure
            failure = job.get("last_failure")
            if failure and self._public_url:
                failure["link"] = f"{self._public_url}/runs/{failure['run_id']}"
        return base


def percent(fraction: float) -> str:
    return f"{fraction * 100:.1f} %"


def seconds(value: float) -> str:
    """A duration for people: 0.42 s, 12.3 s, 4 min 05 s, 2 h 10 min."""
    if value < 60:
        return f"{value:.2g} s" if value < 1 else f"{value:.1f} s"
    if value < 3600:
        return f"{int(value // 60)} min {int(value % 60):02d} s"
    return f"{int(value // 3600)} h {int(value % 3600 // 60):02d} min"


def headline(facts: dict[str, Any]) -> str:
    kind = str(facts.get("kind"))
    words = _HEADLINES.get(kind, kind.replace("_", " "))
    if kind == "failed" and facts.get("exit_code") not in (None, 0):
        words += f" (exit code {facts['exit_code']})"
    return words


_FACT_KEYS = (
    "alert_id",
    "kind",
    "job_id",
    "job_name",
    "schedule",
    "run_id",
    "status",
    "attempt",
    "scheduled_for",
    "started_at",
    "finished_at",
    "duration",
    "exit_code",
    "triggered_by",
    "error",
    "output_tail",
    "failures",
    "incident_opened_at",
    "period",
    "since",
    "until",
    "totals",
    "jobs",
    "never_ran",
)
