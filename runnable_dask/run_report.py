"""One run as a standalone HTML file, made from its run log alone.

``runnable-dask report <run_id>`` (or the catalog option ``run_report: true``, at the end
of every run) writes it: a timeline of every attempt, in the pipeline's order so that a
branch's steps sit together, coloured by status (a retried step shows each attempt);
every step with its status, attempts, duration, message and log; the metrics as a table
and a chart; the final parameters; the catalog's files. BokehJS is inside the file
(``bokeh.resources.INLINE``), so it opens offline, with any executor's run, long after
its cluster is gone. A map of more than a thousand items shows its items' counts by
status, its first branches and its failed ones (:mod:`runnable_dask.large_maps`).
"""

from __future__ import annotations

import html
import json
import os
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from runnable_dask import results
from runnable_dask.large_maps import branches_shown, is_large, item_statuses, walk_outside
from runnable_dask.results import TERMINAL_TYPES, Span, attempt_times, format_seconds, run_span
from runnable_dask.step_logs import log_name
from runnable_dask.stores.catalog import RunCatalog
from runnable_dask.stores.runlog import BranchLog, RunLog, StepLog

REPORT_NAME = "run-report.html"
"""The report's name in the run's catalog folder."""
STATUS_COLOURS = {
    "SUCCESS": "#2ca02c",
    "FAIL": "#d62728",
    "PROCESSING": "#1f77b4",
    "CREATED": "#9e9e9e",
}
LABELLED_ROWS = 120
"""Timelines of more attempts name their rows on hover only."""
CHARTED_METRICS = 6
BRANCHES_SHOWN = 20
"""Of a map of more than a thousand items, the branches listed besides the failed ones."""
_VALUE_SHOWN = 200


def write_report(run_log: RunLog, path: str | os.PathLike[str] | None = None) -> str:
    """Write the report of ``run_log`` to ``path`` (default: into the run's catalog, as
    :data:`REPORT_NAME`); return where it is."""
    catalog = results.catalog(run_log)
    document = render(run_log, catalog)
    if path is None:
        return catalog.write_text(REPORT_NAME, document)
    Path(path).write_text(document, encoding="utf-8")
    return str(path)


def report_at_end(run_log: RunLog) -> str:
    """Write the report as a run ends (the catalog's ``run_report`` option): where it is,
    or why there is none; a report that cannot be written never fails the run."""
    try:
        return write_report(run_log)
    except Exception as exc:
        return f"not written ({type(exc).__name__}: {exc})"


def render(run_log: RunLog, catalog: RunCatalog) -> str:
    """The report as one HTML document."""
    from bokeh.embed import file_html
    from bokeh.layouts import column
    from bokeh.models.widgets.markups import Div
    from bokeh.resources import INLINE

    shown = _steps(run_log)
    parts = [Div(text=_header(run_log, catalog), sizing_mode="stretch_width")]
    parts += [_section("Timeline: every attempt"), _timeline(shown)]
    parts += [_section("Steps"), _steps_table(shown, catalog)]
    listed = (step for step, _ in shown if isinstance(step, StepLog))
    metric_rows = results.step_metrics(run_log.run_id, listed)
    if metric_rows:
        parts += [_section("Metrics"), _metrics_table(metric_rows), *_metric_charts(metric_rows)]
    parts += [_section("Parameters"), _parameters_table(run_log)]
    parts += [_section("Catalog"), Div(text=_catalog_list(run_log, catalog))]
    layout = column(*parts, sizing_mode="stretch_width")
    return file_html(layout, resources=INLINE, title=f"Run {run_log.run_id}")


def _section(title: str) -> Any:
    from bokeh.models.widgets.markups import Div

    return Div(text=f"<h2 style='margin:18px 0 4px 0'>{html.escape(title)}</h2>")


def _header(run_log: RunLog, catalog: RunCatalog) -> str:
    span = run_span(run_log)
    large: list[StepLog] = []
    counts = Counter(
        step.status
        for step in walk_outside(run_log.steps.values(), large)
        if step.step_type in ("task", "stub")
    )
    shown = _by_status(counts)
    colour = STATUS_COLOURS.get(run_log.status, "#000")
    lines = [
        f"<h1 style='margin:4px 0'>Run {html.escape(run_log.run_id)} "
        f"<span style='color:{colour}'>{run_log.status}</span></h1>",
        f"<p>Started {span.started()}, took {span.duration()}; steps: {shown or 'none'}",
    ]
    if run_log.tag:
        lines.append(f"; tag {html.escape(run_log.tag)}")
    for step in large:
        lines.append(
            f"<br><code>{html.escape(step.internal_name)}</code>: {len(step.branches):,} "
            f"items, {_by_status(item_statuses(step))} (their steps are not counted above; "
            f"the first {BRANCHES_SHOWN} and the failed ones are listed below)"
        )
    launch = run_log.run_config.get("launch", {})
    if launch.get("entry"):
        lines.append(f"<br>From <code>{html.escape(str(launch['entry']))}</code>")
    lines.append(f"<br>Catalog: {_link(catalog.url())}")
    report = run_log.run_config.get("performance_report")
    if report:
        lines.append(f"<br>Dask performance report: {_link(str(report))}")
    error = run_log.run_config.get("error")
    if error:
        lines.append(f"<br><b style='color:#d62728'>Run error:</b> {html.escape(str(error))}")
    failed = run_log.failed_steps()
    for step in failed[:20]:
        lines.append(
            f"<br><b style='color:#d62728'>failed</b> <code>{html.escape(step.internal_name)}"
            f"</code>: {html.escape(step.message)}"
        )
    return "".join(lines) + "</p>"


def _by_status(counts: Counter[str]) -> str:
    return ", ".join(
        f"<span style='color:{STATUS_COLOURS.get(s, '#000')}'>{n:,} {s}</span>"
        for s, n in sorted(counts.items())
    )


def _link(target: str, text: str | None = None) -> str:
    href = target if "://" in target else Path(target).absolute().as_uri()
    return f"<a href='{html.escape(href)}'>{html.escape(text or target)}</a>"


def _steps(run_log: RunLog) -> Shown:
    """Every step but the terminals, and every branch, in the pipeline's order, with
    its depth; of a large map, the first branches and the failed ones, then how many
    more it has."""
    found: Shown = []

    def visit(steps: dict[str, StepLog], depth: int) -> None:
        for step in steps.values():
            if step.step_type in TERMINAL_TYPES:
                continue
            found.append((step, depth))
            branches = (
                branches_shown(step, BRANCHES_SHOWN) if is_large(step) else step.branches.values()
            )
            listed = 0
            for branch in branches:
                found.append((branch, depth + 1))
                visit(branch.steps, depth + 2)
                listed += 1
            if listed < len(step.branches):
                more = _More(run_log.run_id, len(step.branches) - listed)
                found.append((more, depth + 1))

    visit(run_log.steps, 0)
    return found


@dataclass(frozen=True)
class _More:
    """The branches of a large map that the report leaves out."""

    run_id: str
    count: int


Shown = list[tuple[StepLog | BranchLog | _More, int]]
"""What the report lists, with each one's depth."""


def _timeline(shown: Shown) -> Any:
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.plotting import figure

    data: dict[str, list[Any]] = {
        k: []
        for k in ("y", "start", "end", "step", "attempt", "status", "colour", "took", "message")
    }
    labels: dict[int, str] = {}
    row = 0
    for step, _ in shown:
        if isinstance(step, _More):
            continue
        timed = [a for a in getattr(step, "attempts", ()) if a.start_time]
        if not timed:
            continue
        labels[row] = step.internal_name
        for attempt in timed:
            start = datetime.fromisoformat(attempt.start_time)
            end = datetime.fromisoformat(attempt.end_time) if attempt.end_time else start
            data["y"].append(row)
            data["start"].append(start)
            data["end"].append(end)
            data["step"].append(step.internal_name)
            data["attempt"].append(attempt.attempt_number)
            data["status"].append(attempt.status)
            data["colour"].append(STATUS_COLOURS.get(attempt.status, "#000"))
            data["took"].append(format_seconds((end - start).total_seconds()))
            data["message"].append(attempt.message[:_VALUE_SHOWN])
        row += 1
    rows = max(row, 1)
    plot = figure(
        x_axis_type="datetime",
        height=min(120 + 18 * rows, 2400),
        sizing_mode="stretch_width",
        y_range=(rows - 0.5, -0.5),
        tools="xpan,xwheel_zoom,box_zoom,reset,save",
        toolbar_location="above",
    )
    bars = plot.hbar(
        y="y",
        left="start",
        right="end",
        height=0.7,
        color="colour",
        source=ColumnDataSource(data),
        line_color="colour",
        line_width=2,  # quick steps stay visible as a thin line
    )
    plot.add_tools(
        HoverTool(
            renderers=[bars],
            tooltips=[
                ("step", "@step"),
                ("attempt", "@attempt: @status"),
                ("took", "@took"),
                ("message", "@message"),
            ],
        )
    )
    plot.ygrid.grid_line_color = None
    if row <= LABELLED_ROWS:
        plot.yaxis.ticker = list(labels)
        plot.yaxis.major_label_overrides = labels
    else:
        plot.yaxis.axis_label = f"{row} steps, in the pipeline's order (hover to name them)"
    return plot


def _table(data: dict[str, list[Any]], columns: list[tuple[str, str, int]], **kw: Any) -> Any:
    from bokeh.models import ColumnDataSource
    from bokeh.models.widgets.tables import DataTable, HTMLTemplateFormatter, TableColumn

    rows = len(next(iter(data.values()), []))
    made = []
    for field, title, width in columns:
        html_field = field.endswith("_html")
        formatter = HTMLTemplateFormatter(template=f"<%= {field} %>") if html_field else None
        made.append(
            TableColumn(
                field=field,
                title=title,
                width=width,
                **({"formatter": formatter} if formatter else {}),
            )
        )
    return DataTable(
        source=ColumnDataSource(data),
        columns=made,
        index_position=None,
        height=min(40 + 26 * max(rows, 1), kw.pop("max_height", 600)),
        sizing_mode="stretch_width",
        **kw,
    )


def _steps_table(shown: Shown, catalog: RunCatalog) -> Any:
    data: dict[str, list[Any]] = {
        k: []
        for k in ("step_html", "type", "status_html", "attempts", "duration", "message", "log_html")
    }
    logs = set(_files(catalog, "logs"))
    composite_at: dict[int, str] = {}  # depth -> the last step seen there
    for step, depth in shown:
        if isinstance(step, _More):
            more = f"<i>... {step.count:,} more branches, not listed here</i>"
            data["step_html"].append(f"<span style='padding-left:{4 + 16 * depth}px'>{more}</span>")
            data["message"].append(f"runnable-dask show {step.run_id} --all lists them all")
            for column in ("type", "status_html", "attempts", "duration", "log_html"):
                data[column].append("")
            continue
        colour = STATUS_COLOURS.get(step.status, "#000")
        title = html.escape(step.internal_name)
        if isinstance(step, BranchLog):  # named by what it adds to its composite's name
            parent = composite_at.get(depth - 1, "")
            label = f"<i>{html.escape(step.internal_name[len(parent) + 1 :])}</i>"
            span, kind, message, attempts = Span.of(attempt_times(step.steps.values())), "", "", ""
        else:
            label = html.escape(step.name if depth else step.internal_name)
            span, kind = Span.of(attempt_times([step])), step.step_type
            message, attempts = step.message, len(step.attempts) or ""
            composite_at[depth] = step.internal_name
        data["step_html"].append(
            f"<span style='padding-left:{4 + 16 * depth}px' title='{title}'>{label}</span>"
        )
        data["type"].append(kind)
        data["status_html"].append(f"<b style='color:{colour}'>{step.status}</b>")
        data["attempts"].append(attempts)
        data["duration"].append(span.duration())
        data["message"].append(message)
        log = log_name(step.internal_name)
        data["log_html"].append(_link(catalog.url(log), "log") if log in logs else "")
    return _table(
        data,
        [
            ("step_html", "Step", 320),
            ("type", "Type", 70),
            ("status_html", "Status", 80),
            ("attempts", "Attempts", 60),
            ("duration", "Duration", 80),
            ("message", "Message", 420),
            ("log_html", "Log", 60),
        ],
    )


def _metrics_table(rows: list[results.MetricRow]) -> Any:
    data = {
        "step": [r["step"] for r in rows],
        "metric": [r["metric"] for r in rows],
        "value": [_shown(r["value"]) for r in rows],
    }
    return _table(
        data,
        [("step", "Step", 420), ("metric", "Metric", 200), ("value", "Value", 200)],
        max_height=400,
    )


def _metric_charts(rows: list[results.MetricRow]) -> list[Any]:
    """One bar chart per numeric metric (the first few), a bar per step that recorded it."""
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.plotting import figure

    by_metric: dict[str, list[tuple[str, float]]] = {}
    for r in rows:
        value = r["value"]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            by_metric.setdefault(r["metric"], []).append((r["step"], float(value)))
    charts = []
    for metric, points in list(by_metric.items())[:CHARTED_METRICS]:
        steps = [step for step, _ in points]
        plot = figure(
            y_range=steps[::-1],
            height=min(90 + 20 * len(points), 1200),
            sizing_mode="stretch_width",
            title=metric,
            tools="save",
            toolbar_location="above",
        )
        source = ColumnDataSource({"step": steps, "value": [v for _, v in points]})
        bars = plot.hbar(y="step", right="value", height=0.7, source=source, color="#1f77b4")
        plot.add_tools(
            HoverTool(renderers=[bars], tooltips=[("step", "@step"), (metric, "@value")])
        )
        if len(points) > LABELLED_ROWS:
            plot.yaxis.major_label_text_font_size = "0pt"
        charts.append(plot)
    return charts


def _parameters_table(run_log: RunLog) -> Any:
    from bokeh.models.widgets.markups import Div

    rows = results.parameters(run_log)
    if not rows:
        return Div(text="<p>The run recorded no final parameters.</p>")
    data = {
        "parameter": [r["parameter"] for r in rows],
        "kind": [r["kind"] for r in rows],
        "value": [_shown(r["value"]) for r in rows],
    }
    return _table(
        data,
        [("parameter", "Parameter", 240), ("kind", "Kind", 80), ("value", "Value", 700)],
        max_height=400,
    )


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= _VALUE_SHOWN else text[: _VALUE_SHOWN - 3] + "..."


def _catalog_list(run_log: RunLog, catalog: RunCatalog) -> str:
    """The files in the run's catalog folder (checkpoints left out), each a link."""
    files = [f for f in _files(catalog, "") if f != REPORT_NAME]
    if not files:
        return f"<p>No files in {html.escape(catalog.url())}.</p>"
    put = {  # stored as <run_id>/<path>
        r.catalog_relative_path.split("/", 1)[-1]
        for step in walk_outside(run_log.steps.values(), [])
        for r in step.data_catalog
        if r.stage == "put"
    }
    items = "".join(
        f"<li>{_link(catalog.url(f), f)}{' (put by a step)' if f in put else ''}</li>"
        for f in files
    )
    return f"<ul style='columns:2'>{items}</ul>"


def _files(catalog: RunCatalog, folder: str) -> list[str]:
    """The run's files under ``folder`` (its checkpoints left out); none if unreachable."""
    try:
        return [f for f in catalog.list_files(folder) if not f.startswith(".checkpoints")]
    except OSError:
        return []
