"""What one read of job versions may answer for, and when a run claimed once due may start as claimed."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta

import pytest

from cronkeeper.engine.vetting import RecentVersions

T = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)


class Reads:
    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    def __call__(self, job_ids: list[str]) -> dict[str, int]:
        self.asked.append(job_ids)
        return dict.fromkeys(job_ids, 1)


def nothing_coming(_until: datetime) -> Collection[str]:
    return ()


@pytest.mark.parametrize(
    ("later", "reads"),
    [
        pytest.param(9 * MS, 1, id="within-10ms"),
        pytest.param(10 * MS, 2, id="10ms-on"),
        pytest.param(-5 * MS, 2, id="clock-stepped-back"),
    ],
)
def test_a_kept_read_answers_only_within_10_ms_after_it(later: timedelta, reads: int) -> None:
    versions, read = RecentVersions(), Reads()
    versions.of({"a"}, T, T, read, nothing_coming)
    versions.of({"a"}, T + later, T + later, read, nothing_coming)
    assert len(read.asked) == reads


def test_a_kept_read_answers_for_the_runs_due_in_its_window_and_not_for_other_jobs() -> None:
    versions, read = RecentVersions(), Reads()
    versions.of({"a"}, T, T, read, lambda until: {"b"} if until == T + 10 * MS else ())
    versions.of({"b"}, T + 5 * MS, T + 5 * MS, read, nothing_coming)
    versions.of({"c"}, T + 6 * MS, T + 6 * MS, read, nothing_coming)
    assert read.asked == [["a", "b"], ["c"]]


@pytest.mark.parametrize(
    ("due_in", "reads"),
    [
        pytest.param(3 * MS, 1, id="due-within-10ms-of-the-read"),
        pytest.param(4 * MS, 2, id="due-10ms-after-the-read"),
    ],
)
def test_a_kept_read_answers_for_runs_not_yet_due_only_if_made_within_10_ms_before_they_are(
    due_in: timedelta, reads: int
) -> None:
    """Runs vetted ahead of their due time (the starter makes them ready ahead): the read must be as recent
    when they are due as it must be for runs vetted once due."""
    versions, read = RecentVersions(), Reads()
    versions.of({"a"}, T, T, read, nothing_coming)
    versions.of({"a"}, T + 6 * MS, T + 6 * MS + due_in, read, nothing_coming)
    assert len(read.asked) == reads


def test_an_edit_made_or_heard_of_forgets_the_kept_read() -> None:
    versions, read = RecentVersions(), Reads()
    versions.of({"a"}, T, T, read, nothing_coming)
    versions.forget(T + MS)
    versions.of({"a"}, T + 2 * MS, T + 2 * MS, read, nothing_coming)
    assert len(read.asked) == 2


@pytest.mark.parametrize(
    ("now", "forgot_at", "unchanged"),
    [
        pytest.param(T + 5 * MS, None, True, id="just-claimed"),
        pytest.param(T + 200 * MS, None, True, id="claimed-a-while-ago"),
        pytest.param(T - MS, None, False, id="clock-stepped-back"),
        pytest.param(T + 5 * MS, T + MS, False, id="edited-since"),
        pytest.param(T + 5 * MS, T, False, id="edited-the-same-instant"),
        pytest.param(T + 5 * MS, T - MS, True, id="edited-before"),
    ],
)
def test_a_run_claimed_once_due_starts_as_claimed_only_if_nothing_was_edited_since(
    now: datetime, forgot_at: datetime | None, unchanged: bool
) -> None:
    versions = RecentVersions()
    if forgot_at is not None:
        versions.forget(forgot_at)
    assert versions.unchanged_since(T, now) is unchanged
