"""What stops a benchmark run from counting."""

from __future__ import annotations


class BenchFailure(RuntimeError):
    """A run of a scenario whose figures cannot count: a process it started died, or one executed nothing.

    Raised, never printed as a figure: a median must only ever be taken over runs in which everything the
    bench started worked."""
