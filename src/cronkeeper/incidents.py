"""What a run's outcome means for its job's incident, and which alert it calls for.

An incident is a streak of bad final outcomes of one job (failed, timed out, lost, after its retries; or
missed: a fire that did not start), ended by the next success.  People hear of it once, when it reaches
``after`` bad outcomes, and once when it ends (``recovered``), not at every failure, unless a job asks for
``every_failure``.  These rules are pure: the store applies them inside the transaction that records the
outcome, so an alert is written with the outcome it reports or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from cronkeeper.models import AlertKind, NotifyOptions, RunStatus

T = TypeVar("T")

# Kinds about runs that are not trouble: a job asks for them itself (the defaults cannot), so that the store
# reads notification policies only for the jobs that did.
EVERY_RUN_KINDS = frozenset({AlertKind.SUCCEEDED, AlertKind.OUTPUT})

# Outcomes that open or extend an incident: the job failed, or did not run when it should have.
BAD_STATUSES = frozenset({RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.LOST, RunStatus.MISSED})
# What a job that names channels hears of unless it says otherwise: trouble and its end, not every success.
DEFAULT_ON = frozenset(
    {
        AlertKind.FAILED,
        AlertKind.TIMED_OUT,
        AlertKind.LOST,
        AlertKind.MISSED,
        AlertKind.LONG_RUNNING,
        AlertKind.RECOVERED,
    }
)


@dataclass(frozen=True, slots=True)
class NotifyPolicy:
    """Who hears what about a job, every option decided: its channels, the kinds it alerts on, after how many
    bad outcomes in a row an incident is alerted, and whether every bad outcome is (not once per incident)."""

    channels: tuple[str, ...] = ()
    on: frozenset[AlertKind] = DEFAULT_ON
    after: int = 1
    every_failure: bool = False


def resolve(options: NotifyOptions, defaults: NotifyOptions) -> NotifyPolicy | None:
    """A job's policy: its own options where it set them, the defaults for the rest.  None when that leaves
    no channel: nobody is told, and the store does no alert work for the job."""
    channels = options.channels if options.channels is not None else defaults.channels
    if not channels:
        return None
    return NotifyPolicy(
        channels=channels,
        on=_first(options.on, defaults.on, DEFAULT_ON),
        after=_first(options.after, defaults.after, 1),
        every_failure=_first(options.every_failure, defaults.every_failure, False),
    )


def _first(own: T | None, default: T | None, fallback: T) -> T:
    if own is not None:
        return own
    return default if default is not None else fallback


@dataclass(frozen=True, slots=True)
class IncidentState:
    """An open incident as the rules see it: bad outcomes so far, and whether it has been alerted."""

    failures: int = 0
    alerted: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one outcome does: the incident after it (None: none open), and the alert it calls for."""

    incident: IncidentState | None
    alert: AlertKind | None


def judge(
    status: RunStatus,
    incident: IncidentState | None,
    policy: NotifyPolicy | None,
    *,
    has_output: bool = False,
) -> Verdict:
    """The incident after a final outcome, and the alert it calls for (never one without a policy).

    ``status`` must be final: a failure that will be retried is not judged, so a job that succeeds on its
    retry never opened an incident.  Incidents are kept for jobs nobody is told about too: the dashboard
    shows them, and channels added later alert on the streak as it stands.  An alert about the incident
    wins over one about the run's output (one message per run).
    """
    if status in BAD_STATUSES:
        verdict = _bad(status, incident, policy)
    elif status is RunStatus.SUCCEEDED:
        verdict = _good(incident, policy)
    else:
        verdict = Verdict(incident, None)
    if verdict.alert is None and has_output and policy is not None and AlertKind.OUTPUT in policy.on:
        return Verdict(verdict.incident, AlertKind.OUTPUT)
    return verdict


def _bad(status: RunStatus, incident: IncidentState | None, policy: NotifyPolicy | None) -> Verdict:
    failures = (incident.failures if incident else 0) + 1
    alerted = incident.alerted if incident else False
    kind = AlertKind(status.value)
    if policy is None or kind not in policy.on:
        return Verdict(IncidentState(failures, alerted), None)
    if policy.every_failure or (not alerted and failures >= policy.after):
        return Verdict(IncidentState(failures, True), kind)
    return Verdict(IncidentState(failures, alerted), None)


def _good(incident: IncidentState | None, policy: NotifyPolicy | None) -> Verdict:
    if policy is None:
        return Verdict(None, None)
    if incident is not None and incident.alerted and AlertKind.RECOVERED in policy.on:
        return Verdict(None, AlertKind.RECOVERED)
    return Verdict(None, AlertKind.SUCCEEDED if AlertKind.SUCCEEDED in policy.on else None)
