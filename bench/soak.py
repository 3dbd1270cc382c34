"""The soak: a steady load for a long time, sampled each window, to see whether memory or CPU per fire grows.

Both sides run the same load (``rate`` jobs every second, each at its own offset in the second) through their
own firing scenario and hand a :class:`Sampler` to its wait loop.  The figures compare the first windows
after warm-up with the last ones: a scheduler that leaks, or whose work per fire grows with its history,
shows it there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from statistics import median
from typing import TYPE_CHECKING

import psutil

from bench.failures import BenchFailure

if TYPE_CHECKING:
    from bench.figures import FireResult

#: The first window holds start-up (imports settling, caches filling, the first claims): growth is measured
#: from the end of it.
_WARM_WINDOWS = 1
#: Windows whose median CPU per fire stands for the start of the soak, and as many for its end.
_COMPARED_WINDOWS = 5


@dataclass
class Sampler:
    """Resident memory, process CPU and fires accounted for, taken at each window boundary from ``began``
    (the first fire, set by the scenario) to ``began + seconds``.  ``poll`` is called from the scenario's
    wait loop."""

    seconds: float
    window: float
    began: float = 0.0
    samples: list[tuple[float, float, int]] = field(default_factory=list)
    _process: psutil.Process = field(default_factory=psutil.Process)

    def poll(self, accounted: Callable[[], int]) -> None:
        due = self.began + self.window * len(self.samples)
        if due > self.began + self.seconds or time.time() < due:
            return
        self.samples.append((self._process.memory_info().rss / 2**20, time.process_time(), accounted()))


@dataclass(frozen=True, slots=True)
class SoakResult:
    """Figures of one soak: the outcome of every fire, and how memory and CPU per fire moved over time."""

    jobs: int
    seconds: float
    window_seconds: float
    expected_fires: int
    executed_fires: int
    percent_executed: float
    percent_on_time: float
    lateness_p99_ms: float
    cpu_us_per_fire: float
    #: Resident memory at the end of the warm-up window, and at the end of the last window.
    rss_after_warm_up_mb: float
    rss_at_end_mb: float
    rss_growth_mb: float
    #: CPU per fire accounted for: median of the first windows after warm-up, and of the last windows.
    cpu_us_per_fire_first_windows: float
    cpu_us_per_fire_last_windows: float
    cpu_per_fire_growth_percent: float
    #: RSS at each window boundary, in MB: the shape of the curve, not just its ends.
    rss_mb_by_window: str


def soak_result(sampler: Sampler, fire: FireResult) -> SoakResult:
    """Combine the scenario's own figures (a ``FireResult``) with the samples.  CPU per fire at the start
    and at the end is the median over ``_COMPARED_WINDOWS`` windows, so that one window disturbed by
    something else on the machine does not decide the figure; a soak too short for that fails the bench."""
    samples = sampler.samples
    compared = min(_COMPARED_WINDOWS, (len(samples) - 1 - _WARM_WINDOWS) // 2)
    if compared < 1:
        raise BenchFailure(f"the soak took {len(samples)} samples: too few to compare its start and its end")
    per_window = [_cpu_per_fire(start, end) for start, end in pairwise(samples[_WARM_WINDOWS:])]
    first, last = median(per_window[:compared]), median(per_window[-compared:])
    warm_rss, end_rss = samples[_WARM_WINDOWS][0], samples[-1][0]
    figures = {name: getattr(fire, name) for name in SoakResult.__slots__ if hasattr(fire, name)}
    return SoakResult(
        **figures,
        window_seconds=sampler.window,
        rss_after_warm_up_mb=warm_rss,
        rss_at_end_mb=end_rss,
        rss_growth_mb=end_rss - warm_rss,
        cpu_us_per_fire_first_windows=first,
        cpu_us_per_fire_last_windows=last,
        cpu_per_fire_growth_percent=100.0 * (last - first) / first,
        rss_mb_by_window=" ".join(f"{rss:.0f}" for rss, _, _ in samples),
    )


def _cpu_per_fire(start: tuple[float, float, int], end: tuple[float, float, int]) -> float:
    fires = end[2] - start[2]
    if fires <= 0:
        raise BenchFailure("a soak window accounted for no fire: the scheduler stopped working")
    return 1e6 * (end[1] - start[1]) / fires
