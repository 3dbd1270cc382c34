"""The timeline's SVG, written as one string.

A timeline holds up to thousands of shapes, each with a link and a hover text.  Drawn by a Jinja loop, every
attribute goes through autoescaping and ``Markup``: that cost more than reading the runs.  Here the shapes
are joined in one pass, and the only text not made here (job ids, the mount prefix) is escaped once per lane
or page.  The look still comes from classes in app.css: the Content-Security-Policy forbids inline styles.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from cronkeeper.web.charts import SpanBar, Timeline
from cronkeeper.web.filters import in_zone, seconds

_LABEL_LENGTH = 24
# As Jinja's ``truncate`` (which the lane labels used): a name up to this much longer is left whole.
_LABEL_LEEWAY = 5


def timeline_svg(chart: Timeline, base: str) -> Markup:
    """The ``<svg>`` of ``chart``; links start with ``base``, the prefix the app is mounted under."""
    height = chart.height
    full = height + 24
    parts = [
        f'<svg id="timeline" class="timeline" width="{chart.width}" height="{full}" '
        f'viewBox="0 0 {chart.width} {full}" role="group" aria-label="runs of each job on a time axis, '
        'oldest at the left; the fires ahead of now are drawn faintly">'
    ]
    parts.extend(
        f'<line class="grid" x1="{tick.x}" y1="0" x2="{tick.x}" y2="{height}"/>'
        f'<text class="tick" x="{tick.x}" y="{height + 14}">{escape(tick.label)}</text>'
        for tick in chart.ticks
    )
    root = escape(base)
    bar_height = round(chart.lane_height - 6, 2)
    for lane in chart.lanes:
        job = escape(lane.job_id)
        top, baseline = round(lane.y + 3, 2), round(lane.y + chart.lane_height - 5, 2)
        parts.append(
            f'<a href="{root}/jobs/{job}"><text class="lane" x="0" y="{baseline}">'
            f"{escape(_label(lane.job_id))}</text></a>"
        )
        parts.extend(
            f'<a href="{root}/runs/{bar.first.id}"><rect class="{bar.css}" x="{bar.x}" y="{top}" '
            f'width="{bar.w}" height="{bar_height}"><title>{_title(bar, job, chart)}</title></rect></a>'
            for bar in lane.bars
        )
        parts.extend(
            f'<rect class="fire-ahead" x="{fire}" y="{top}" width="2" height="{bar_height}">'
            f"<title>{job}: next fire</title></rect>"
            for fire in lane.fires
        )
    parts.append(
        f'<line class="now" x1="{chart.now_x}" y1="0" x2="{chart.now_x}" y2="{height}"/>'
        f'<text class="tick now-label" x="{chart.now_x}" y="{full}">now</text></svg>'
    )
    return Markup("".join(parts))


def _title(bar: SpanBar, job: str, chart: Timeline) -> str:
    """``job, run 12: failed in 3.2 s, 2026-12-05 14:00:00 UTC``, or ``40 runs from …`` for a merged bar;
    ``job`` comes escaped, and nothing else in it is user text."""
    run = bar.first
    begin = run.started_at or run.scheduled_for
    took = (
        "" if run.started_at is None or run.finished_at is None else f" in {seconds(run.finished_at - begin)}"
    )
    title = f"{job}, run {run.id}: {run.status.value}{took}, {in_zone(begin, chart.zone)}"
    return title if bar.stands_for == 1 else f"{bar.stands_for} runs from {title}"


def _label(job_id: str) -> str:
    if len(job_id) <= _LABEL_LENGTH + _LABEL_LEEWAY:
        return job_id
    return job_id[: _LABEL_LENGTH - 1] + "…"
