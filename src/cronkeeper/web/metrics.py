"""``/metrics`` in the Prometheus text format.

Counters and histograms count the runs that ended in this process (each node reports its own, as Prometheus
expects; sum them across nodes).  Gauges of running and queued runs and live nodes come from the database, so
any node reports the whole cluster.  Protected like the API unless ``public_metrics`` is set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from cronkeeper.events import EventKind, RunEvent
from cronkeeper.store.records import AlertStatus
from cronkeeper.web.auth import viewer

if TYPE_CHECKING:
    from collections.abc import Iterator

    from cronkeeper.scheduler import SchedulerBase

DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, float("inf"))
LATENESS_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, float("inf"))


class _ClusterCollector(Collector):
    """Read at every scrape: the database's view and this process's scheduler loop."""

    def __init__(self, scheduler: SchedulerBase) -> None:
        self.scheduler = scheduler
        self.status = scheduler.status

    def describe(self) -> list[Metric]:
        """Nothing to declare up front: without this, registering would run every query once."""
        return []

    def collect(self) -> Iterator[Metric]:
        scheduler = self.scheduler
        runs = GaugeMetricFamily(
            "cronkeeper_runs_active", "Queued and running runs in the cluster", labels=["status"]
        )
        for status, count in self.status.count_active().items():
            runs.add_metric([status], count)
        yield runs
        alerts = GaugeMetricFamily(
            "cronkeeper_alerts", "Alerts in the outbox, by delivery status", labels=["status"]
        )
        counted = scheduler.alerts.count_alerts()
        for status in AlertStatus:
            alerts.add_metric([status.value], counted.get(status.value, 0))
        yield alerts
        now = scheduler.clock.now()
        nodes = self.status.nodes(now=now, lease=scheduler.settings.lease)
        yield GaugeMetricFamily(
            "cronkeeper_nodes_live",
            "Scheduler processes heartbeating",
            value=sum(node.live for node in nodes),
        )
        health = scheduler.health()
        yield GaugeMetricFamily(
            "cronkeeper_scheduler_up", "1 if this process runs a scheduler", value=health.running
        )
        if health.node is not None:
            last = health.last_loop_at
            yield GaugeMetricFamily(
                "cronkeeper_scheduler_seconds_since_loop",
                "Seconds since this process's scheduler loop last completed a pass",
                value=float("nan") if last is None else (now - last).total_seconds(),
            )
            yield GaugeMetricFamily(
                "cronkeeper_scheduler_loop_errors",
                "Scheduler loop passes that failed on the database since start",
                value=health.loop_errors,
            )


class Metrics:
    """The registry of one app (no process-wide globals: two apps in one process do not mix counts)."""

    def __init__(self, scheduler: SchedulerBase, *, public: bool) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.runs = Counter(
            "cronkeeper_runs", "Runs that ended in this process", ["job", "status"], registry=self.registry
        )
        self.duration = Histogram(
            "cronkeeper_run_duration_seconds",
            "Duration of runs that ended in this process",
            ["job"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.lateness = Histogram(
            "cronkeeper_run_lateness_seconds",
            "Start minus due time of runs started in this process",
            buckets=LATENESS_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_ClusterCollector(scheduler))
        scheduler.listeners.add(self.observe)
        self.router = APIRouter(include_in_schema=False)
        dependencies = [] if public else [Depends(viewer)]
        self.router.add_api_route("/metrics", self.endpoint, methods=["GET"], dependencies=dependencies)

    def observe(self, event: RunEvent) -> None:
        if event.kind is EventKind.STARTED:
            if event.lateness is not None:
                self.lateness.observe(max(event.lateness, 0.0))
            return
        self.runs.labels(event.job_id, event.kind.value).inc()
        if event.duration is not None:
            self.duration.labels(event.job_id).observe(event.duration)

    async def endpoint(self, request: Request) -> Response:
        body = await run_in_threadpool(generate_latest, self.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)
