"""Read models of the cluster's state for the status page, /api/status and /metrics: nodes, what is running,
counts by status and recent failures.  Each is one query on an index, whatever the size of the history."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select

from cronkeeper.models import Run, RunStatus
from cronkeeper.store.base import StatusView
from cronkeeper.store.engines import reading
from cronkeeper.store.records import Node
from cronkeeper.store.rows import run_from_row
from cronkeeper.store.schema import nodes, runs

FAILED_STATUSES = (RunStatus.FAILED.value, RunStatus.TIMED_OUT.value, RunStatus.LOST.value)


# ``cronkeeper exec`` heartbeats as a node (``exec:…``) only so that its run is lost if it dies: it runs no
# scheduler, and is no answer to "is a scheduler running?".
SCHEDULER_NODE = nodes.c.id.not_like("exec:%")


class SqlStatusView(StatusView):
    """Cluster state on the scheduler's database engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def nodes(self, *, now: datetime, lease: timedelta, since: timedelta = timedelta(days=1)) -> list[Node]:
        """Live nodes, and those stopped or silent within ``since``, most recent heartbeat first."""
        query = (
            select(nodes)
            .where(nodes.c.heartbeat_at >= now - since, SCHEDULER_NODE)
            .order_by(nodes.c.heartbeat_at.desc())
        )
        with reading(self.engine) as conn:
            return [
                Node(
                    row.id,
                    row.hostname,
                    row.pid,
                    row.started_at,
                    row.heartbeat_at,
                    row.stopped_at,
                    row.stopped_at is None and row.heartbeat_at >= now - lease,
                )
                for row in conn.execute(query)
            ]

    def count_live_nodes(self, *, now: datetime, lease: timedelta) -> int:
        with reading(self.engine) as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(nodes)
                    .where(nodes.c.heartbeat_at >= now - lease, nodes.c.stopped_at.is_(None), SCHEDULER_NODE)
                ).scalar_one()
            )

    def active_runs(self, *, limit: int = 200) -> list[Run]:
        """Running and queued runs, oldest first."""
        query = (
            select(runs)
            .where(runs.c.status.in_([RunStatus.RUNNING.value, RunStatus.QUEUED.value]))
            .order_by(runs.c.id)
            .limit(limit)
        )
        with reading(self.engine) as conn:
            return [run_from_row(row) for row in conn.execute(query)]

    def count_active(self) -> dict[str, int]:
        """Queued and running runs in the cluster (a count on the partial index of active runs)."""
        query = (
            select(runs.c.status, func.count())
            .where(runs.c.status.in_([RunStatus.RUNNING.value, RunStatus.QUEUED.value]))
            .group_by(runs.c.status)
        )
        with reading(self.engine) as conn:
            found = {status: int(count) for status, count in conn.execute(query)}
        return {status: found.get(status, 0) for status in (RunStatus.QUEUED.value, RunStatus.RUNNING.value)}

    def recent_failures(self, *, limit: int = 20) -> list[Run]:
        query = select(runs).where(runs.c.status.in_(FAILED_STATUSES)).order_by(runs.c.id.desc()).limit(limit)
        with reading(self.engine) as conn:
            return [run_from_row(row) for row in conn.execute(query)]

    def counts_by_status(self) -> dict[str, int]:
        """How many runs are in each status, over the whole history (zero for statuses with none)."""
        query = select(runs.c.status, func.count()).group_by(runs.c.status)
        with reading(self.engine) as conn:
            found = {status: int(count) for status, count in conn.execute(query)}
        return {status.value: found.get(status.value, 0) for status in RunStatus}
