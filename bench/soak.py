"""The soak: a steady load for a long time, sampled each window, to see whether memory or CPU per fire grows.

Both sides run the same load (``rate`` jobs every second, each at its own offset in the second) through their
own firing scenario and hand a :class:`Sampler` to its wait loop.  The figures compare the first windows
after warm-up with the last ones: a scheduler that leaks, or whose work per fire grows with its history,
shows it there.
"""

from __future__ import annotations

import math
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
    """Time, resident memory, process CPU and fires executed, taken at each window boundary from ``began``
    (the first fire, set by the scenario) to ``began + seconds``.  ``poll`` is called from the scenario's
    wait loop; a poll that comes late takes its sample then and the next at the next boundary (never two
    at once), and :meth:`close` takes the last one if the wait ended before it."""

    seconds: float
    window: float
    began: float = 0.0
    samples: list[tuple[float, float, float, int]] = field(default_factory=list)
    _process: psutil.Process = field(default_factory=psutil.Process)
    _next: float | None = None

    def poll(self, executed: Callable[[], int]) -> None:
        now = time.time()
        due = self.began if self._next is None else self._next
        if now < due or due > self.began + self.seconds:
            return
        self._take(now, executed)
        self._next = self.began + self.window * (math.floor((now - self.began) / self.window) + 1)

    def close(self, executed: Callable[[], int]) -> None:
        end = self.began + self.seconds
        if self.samples and self.samples[-1][0] >= end:
            return
        time.sleep(max(0.0, end - time.time()))
        self._take(time.time(), executed)

    def _take(self, now: float, executed: Callable[[], int]) -> None:
        rss = self._process.memory_info().rss / 2**20
        self.samples.append((now, rss, time.process_time(), executed()))


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
    #: CPU per fire executed: median of the first windows after warm-up, and of the last windows.
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
    warm_rss, end_rss = samples[_WARM_WINDOWS][1], samples[-1][1]
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
        rss_mb_by_window=" ".join(f"{rss:.0f}" for _, rss, _, _ in samples),
    )


def _cpu_per_fire(start: tuple[float, float, float, int], end: tuple[float, float, float, int]) -> float:
    """CPU per fire executed in a window: fires that were missed cost little, and counting them would make
    a scheduler that degrades look cheaper."""
    fires = end[3] - start[3]
    if fires <= 0:
        raise BenchFailure("a soak window executed no fire: the scheduler stopped working")
    return 1e6 * (end[2] - start[2]) / fires
