"""A run log as a short HTML summary: what Jupyter shows for a ``RunLog`` (``_repr_html_``).

The run's status and time, its steps by status, what failed and why, then the step tree
(a composite of many branches lists its first ones and every failed one), and the
metrics. Plain HTML with inline styles: notebooks, GitHub and nbconvert render it alike.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import TYPE_CHECKING

from runnable_dask.large_maps import branches_shown, item_statuses, walk_outside
from runnable_dask.results import (
    TERMINAL_TYPES,
    Span,
    attempt_times,
    format_seconds,
    run_span,
    step_metrics,
)

if TYPE_CHECKING:
    from runnable_dask.stores.runlog import RunLog, StepLog

COLOURS = {"SUCCESS": "#2ca02c", "FAIL": "#d62728", "PROCESSING": "#1f77b4", "CREATED": "#999"}
BRANCHES_SHOWN = 5
METRICS_SHOWN = 20
_CELL = "padding:2px 8px;text-align:left"


def run_log_html(run_log: RunLog) -> str:
    span = run_span(run_log)
    counts: dict[str, int] = {}
    large: list[StepLog] = []
    walked = list(walk_outside(run_log.steps.values(), large))
    for step in walked:
        if step.step_type in ("task", "stub"):
            counts[step.status] = counts.get(step.status, 0) + 1
    by_status = ", ".join(f"{_status(s, f'{n} {s}')}" for s, n in sorted(counts.items()))
    parts = [
        f"<div><b>Run {html.escape(run_log.run_id)}</b> {_status(run_log.status)} "
        f"started {span.started()}, took {span.duration()}; steps: {by_status or 'none'}</div>"
    ]
    for step in large:
        items = item_statuses(step)
        shown = ", ".join(f"{_status(s, f'{n:,} {s}')}" for s, n in sorted(items.items()))
        parts.append(
            f"<div><code>{html.escape(step.internal_name)}</code>: {len(step.branches):,} "
            f"items, {shown}; their steps and metrics are not counted here: "
            "<code>results.steps(run_log)</code> and <code>results.metrics(run_log)</code> "
            "read every item</div>"
        )
    for step in run_log.failed_steps():
        parts.append(
            f"<div>{_status('FAIL', 'failed')} <code>{html.escape(step.internal_name)}</code>: "
            f"{html.escape(step.message)}</div>"
        )
    rows: list[str] = []
    _rows(run_log.steps.values(), 0, rows)
    header = "".join(
        f"<th style='{_CELL}'>{h}</th>" for h in ("step", "type", "status", "attempts", "took")
    )
    parts.append(f"<table><tr>{header}</tr>{''.join(rows)}</table>")
    metrics = step_metrics(run_log.run_id, walked)
    if metrics:
        shown = "".join(
            f"<tr><td style='{_CELL}'>{html.escape(m['step'])}</td>"
            f"<td style='{_CELL}'>{html.escape(m['metric'])}</td>"
            f"<td style='{_CELL}'>{html.escape(str(m['value']))}</td></tr>"
            for m in metrics[:METRICS_SHOWN]
        )
        more = (
            f"<div>... {len(metrics) - METRICS_SHOWN} more</div>"
            if len(metrics) > METRICS_SHOWN
            else ""
        )
        parts.append(f"<details><summary>{len(metrics)} metrics</summary><table>{shown}</table>")
        parts.append(f"{more}</details>")
    return "".join(parts)


def _rows(steps: Iterable[StepLog], depth: int, rows: list[str]) -> None:
    for step in steps:
        if step.step_type in TERMINAL_TYPES:
            continue
        rows.append(_row(step, depth))
        shown = branches_shown(step, BRANCHES_SHOWN)
        for branch in shown:
            label = branch.internal_name[len(step.internal_name) + 1 :]
            rows.append(
                f"<tr><td style='{_CELL};padding-left:{8 + 16 * (depth + 1)}px'><i>"
                f"{html.escape(label)}</i></td><td></td><td style='{_CELL}'>"
                f"{_status(branch.status)}</td><td></td><td></td></tr>"
            )
            _rows(branch.steps.values(), depth + 2, rows)
        if len(step.branches) > len(shown):
            rows.append(
                f"<tr><td style='{_CELL};padding-left:{8 + 16 * (depth + 1)}px' colspan=5>"
                f"... {len(step.branches) - len(shown)} more branches</td></tr>"
            )


def _row(step: StepLog, depth: int) -> str:
    took = format_seconds(Span.of(attempt_times([step])).seconds)
    cells = (
        f"<td style='{_CELL};padding-left:{8 + 16 * depth}px'>{html.escape(step.name)}</td>",
        f"<td style='{_CELL}'>{step.step_type}</td>",
        f"<td style='{_CELL}'>{_status(step.status)}</td>",
        f"<td style='{_CELL}'>{len(step.attempts) or ''}</td>",
        f"<td style='{_CELL}'>{took}</td>",
    )
    return f"<tr>{''.join(cells)}</tr>"


def _status(status: str, text: str | None = None) -> str:
    colour = COLOURS.get(status, "#000")
    return f"<b style='color:{colour}'>{html.escape(text or status)}</b>"
