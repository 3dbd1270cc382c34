"""Which jobs one facade scheduler object declares, and retiring those an earlier run of the program declared
and this one no longer does.

APScheduler's default memory job store forgets every job at exit, so a job a program stops adding (a switch
turned off, a lambda removed) is gone after a restart.  cronkeeper keeps jobs in its database, so it must tell
which stored jobs the program used to add: each facade object stores its jobs under the origin
``code HOST:PID:RANDOM`` (its scheduler's ``instance_id``), and the origins its jobs had before it declared
them again name the objects of earlier runs.  At start, their jobs it did not declare are disabled.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Set

import psutil

from cronkeeper.models import Job
from cronkeeper.scheduler import SchedulerBase

PREFIX = "code "  # a facade object's origin: "code " + its instance_id


def is_facade_origin(origin: str) -> bool:
    return origin.startswith(PREFIX)


class Lineage:
    """The origin of one facade object's jobs, and the objects of earlier runs it follows."""

    def __init__(self, core: SchedulerBase, log: logging.Logger) -> None:
        self._core = core
        self._log = log
        self.origin = f"{PREFIX}{core.instance_id}"
        self._earlier: set[str] = set()

    def declaring(self, existing: Job) -> None:
        """``existing`` is about to be declared by this object: remember whose it was."""
        if is_facade_origin(existing.origin) and existing.origin != self.origin:
            self._earlier.add(existing.origin)

    def retire_undeclared(self, declared: Set[str]) -> None:
        """Disable (not delete: history stays) the jobs of the earlier objects this one follows that it did
        not declare.  Objects that may still run (another process of this program, say) keep theirs."""
        earlier = {origin for origin in self._earlier if not self._may_be_alive(origin.removeprefix(PREFIX))}
        self._earlier.clear()
        if not earlier:
            return
        service = self._core.service
        for job in service.list_jobs(include_disabled=False):
            if job.origin in earlier and job.id not in declared:
                service.disable(job.id, reason="no longer added by the program", by="apscheduler")
                self._log.info("disabled job %s: the program no longer adds it", job.id)

    def _may_be_alive(self, instance_id: str) -> bool:
        """Whether the scheduler object named ``instance_id`` may still be running: an open object of this
        process, a live process of this host, or a heartbeating node of another host."""
        if SchedulerBase.is_open_instance(instance_id):
            return True
        host, _, rest = instance_id.partition(":")
        pid_text = rest.partition(":")[0]
        if not pid_text.isdigit():
            return False
        pid = int(pid_text)
        if host == socket.gethostname()[:40]:
            # This process's own pid: an object of it that is closed (or of an earlier process that had it).
            return pid != os.getpid() and psutil.pid_exists(pid)
        core = self._core
        nodes = core.status.nodes(now=core.clock.now(), lease=core.settings.lease)
        return any(node.live and node.hostname[:40] == host and node.pid == pid for node in nodes)
