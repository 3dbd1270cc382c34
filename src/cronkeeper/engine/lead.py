"""How long before a fire the loop begins to claim it.

Fires are claimed ``lookahead`` ahead so that they start on the dot.  That is enough for the fires of a
normal second, but not for ten thousand jobs due on one instant: claiming them takes most of a second, so
with half a second ahead half of them were still being claimed when they were due, and started late by the
claims of the other half.  So when the fires due next are more than a look-ahead's claims can take, claiming
begins earlier: as long before as claiming that many took recently, with a margin for the loop's other
work, but never more than :data:`MAX_LEAD`.  The pace is measured on the claims themselves, so a slower
machine or database begins sooner.  The lead is planned once per due instant: counted again as its claims
went on, the fires left asked for less and less, and the last claims came just in time or late.

Bursts that come one after another (ten thousand jobs every second) are claimed no earlier than halfway from
the last burst (a small group of fires in between does not count).  A fire claimed ahead counts against its
job's ``max_instances``, so a claim made before the last burst's runs had started found every job still held,
claimed none of their next fires, and left them all to be claimed once due: late.
"""

from __future__ import annotations

from datetime import datetime, timedelta

# However many fires are due together, their claims begin at most this long before them.
MAX_LEAD = timedelta(seconds=5)
# Claiming is given this many times as long as the same number of runs took to claim of late: the loop
# also writes outcomes and beats meanwhile, and the workers share the interpreter with it.
MARGIN = 1.5
# A claim of fewer runs says little of the pace: its fixed cost (a transaction, a few reads) dominates.
MIN_SAMPLE = 50
# The pace assumed before a claim has measured it (seconds per run, slow on purpose).
FIRST_PACE = 150e-6
# How much each new measurement moves the pace (an exponential moving average).
SMOOTHING = 0.3


class ClaimLead:
    """The lead for the fires due next, from how many they are and the measured pace of claims."""

    def __init__(self, lookahead: timedelta) -> None:
        self.lookahead = lookahead
        self.seconds_per_run = FIRST_PACE
        self.current = lookahead
        # The due instant the current lead was planned for (None: the look-ahead, planned for none), and the
        # last one whose fires asked for more than the look-ahead.
        self.planned_for: datetime | None = None
        self._last_burst: datetime | None = None

    @property
    def may_exceed_lookahead(self) -> bool:
        return self.lookahead < MAX_LEAD

    def needs_plan(self, due: datetime) -> bool:
        return due != self.planned_for

    def reset(self) -> None:
        """Back to the look-ahead: nothing is due within :data:`MAX_LEAD`."""
        self.current, self.planned_for, self._last_burst = self.lookahead, None, None

    def note_claim(self, runs: int, seconds: float) -> None:
        """A claim of ``runs`` runs took ``seconds``."""
        if runs >= MIN_SAMPLE:
            pace = seconds / runs
            self.seconds_per_run += SMOOTHING * (pace - self.seconds_per_run)

    def counting_limit(self) -> int:
        """How many due fires are worth counting: more would ask for a lead beyond :data:`MAX_LEAD`."""
        return int(MAX_LEAD.total_seconds() / (MARGIN * self.seconds_per_run)) + 1

    def plan(self, due_together: int, due: datetime | None = None) -> timedelta:
        """Set and return the lead for the ``due_together`` fires due within a look-ahead of the instant
        ``due``."""
        needed = timedelta(seconds=MARGIN * self.seconds_per_run * due_together)
        bound = max(MAX_LEAD, self.lookahead)
        last = self._last_burst
        if due is not None and last is not None and last < due:
            bound = min(bound, max(self.lookahead, (due - last) / 2))
        self.current = min(max(self.lookahead, needed), bound)
        self.planned_for = due
        if needed > self.lookahead and due is not None:
            self._last_burst = due
        return self.current
