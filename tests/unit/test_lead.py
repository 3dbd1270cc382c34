"""How long before a burst of fires their claims begin (engine/lead.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cronkeeper.engine.lead import FIRST_PACE, MARGIN, MAX_LEAD, ClaimLead

LOOKAHEAD = timedelta(seconds=0.5)


def test_fires_a_lookahead_can_claim_keep_the_lookahead() -> None:
    lead = ClaimLead(LOOKAHEAD)
    assert lead.plan(0) == LOOKAHEAD
    assert lead.plan(1000) == LOOKAHEAD  # 1000 x 150 µs x 1.5 = 0.225 s


def test_a_burst_is_claimed_as_long_before_as_claiming_it_takes_with_a_margin() -> None:
    lead = ClaimLead(LOOKAHEAD)
    assert lead.plan(10_000) == timedelta(seconds=10_000 * FIRST_PACE * MARGIN)
    assert lead.current == timedelta(seconds=2.25)


def test_the_lead_never_passes_its_bound_and_counting_stops_where_it_would() -> None:
    lead = ClaimLead(LOOKAHEAD)
    assert lead.plan(10**9) == MAX_LEAD
    assert lead.plan(lead.counting_limit()) == MAX_LEAD
    assert ClaimLead(timedelta(seconds=10)).plan(10**9) == timedelta(seconds=10)  # a longer look-ahead holds


def test_the_pace_follows_claims_big_enough_to_measure_it() -> None:
    lead = ClaimLead(LOOKAHEAD)
    lead.note_claim(10, 1.0)  # a small claim: its fixed cost says nothing of the pace
    assert lead.seconds_per_run == FIRST_PACE
    for _ in range(30):
        lead.note_claim(500, 500 * 40e-6)
    assert abs(lead.seconds_per_run - 40e-6) < 1e-7
    assert abs(lead.plan(10_000) - timedelta(seconds=10_000 * 40e-6 * MARGIN)) < timedelta(milliseconds=1)


def test_the_lead_is_planned_once_per_due_instant() -> None:
    lead = ClaimLead(LOOKAHEAD)
    due = datetime(2026, 3, 2, 8, 1, tzinfo=UTC)
    assert lead.needs_plan(due)
    lead.plan(10_000, due)
    assert not lead.needs_plan(due) and lead.needs_plan(due + timedelta(seconds=1))
    lead.reset()
    assert lead.current == LOOKAHEAD and lead.needs_plan(due)


def test_a_burst_right_after_another_is_claimed_no_earlier_than_halfway_from_it() -> None:
    """Fires claimed ahead count against max_instances: claims begun before the last burst started found
    its jobs held and left their next fires to be claimed once due."""
    lead = ClaimLead(LOOKAHEAD)
    first = datetime(2026, 3, 2, 8, 1, tzinfo=UTC)
    assert lead.plan(10_000, first) == timedelta(seconds=2.25)
    assert lead.plan(10_000, first + timedelta(seconds=1)) == LOOKAHEAD
    assert lead.plan(10_000, first + timedelta(seconds=4)) == timedelta(seconds=1.5)
    lead.reset()  # nothing due for a while: the next burst stands alone
    assert lead.plan(10_000, first + timedelta(minutes=1)) == timedelta(seconds=2.25)


def test_a_small_group_of_fires_just_before_a_burst_does_not_shorten_its_lead() -> None:
    lead = ClaimLead(LOOKAHEAD)
    first = datetime(2026, 3, 2, 8, 1, tzinfo=UTC)
    assert lead.plan(10, first - timedelta(seconds=1)) == LOOKAHEAD  # a job every second, say
    assert lead.plan(10_000, first) == timedelta(seconds=2.25)
