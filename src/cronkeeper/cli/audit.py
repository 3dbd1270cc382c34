"""``cronkeeper audit``: who changed what, newest first."""

from __future__ import annotations

import json
from typing import Any

import click

from cronkeeper.cli.context import AppContext, pass_app
from cronkeeper.cli.output import console, print_json, table, when
from cronkeeper.models import AuditEvent
from cronkeeper.serialize import iso
from cronkeeper.store.records import AuditFilter


@click.command("audit")
@click.option(
    "--object-type", metavar="TYPE", help="Only events about this kind of object (job, run, user, token)."
)
@click.option("--object-id", metavar="ID", help="Only events about this object (a job id, a user name…).")
@click.option("--actor", metavar="NAME", help="Only events caused by this user or token.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option(
    "--before", "before_id", type=int, metavar="EVENT_ID", help="Continue below this event (paging)."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@pass_app
def audit(
    app: AppContext,
    object_type: str | None,
    object_id: str | None,
    actor: str | None,
    limit: int,
    before_id: int | None,
    as_json: bool,
) -> None:
    """Recent changes to jobs, runs, users and tokens: who, when, from where."""
    wanted = AuditFilter(object_type, object_id, actor, limit, before_id)
    events = app.scheduler().audit.list(wanted)
    if as_json:
        print_json([event_to_json(event) for event in events])
        return
    out = table("ID", "AT (UTC)", "ACTOR", "SOURCE", "ACTION", "OBJECT", "DETAILS")
    for event in events:
        out.add_row(
            str(event.id),
            when(event.at),
            event.actor,
            event.via or "-",
            event.action,
            f"{event.object_type} {event.object_id}",
            _details(event.details),
        )
    console.print(out)


def event_to_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": iso(event.at),
        "actor": event.actor,
        "via": event.via,
        "source": event.via,  # the name before via, kept for existing scripts
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "details": event.details,
    }


def _details(details: dict[str, Any] | None) -> str:
    """One line, cut short: a job's whole definition would drown the table (--json has it all)."""
    if not details:
        return ""
    text = json.dumps(details, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= 80 else text[:79] + "…"
