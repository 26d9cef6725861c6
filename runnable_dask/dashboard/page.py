"""The dashboard's Pipeline page: a Bokeh document the scheduler's dashboard serves.

Built like the dashboard's own pages (``distributed.dashboard.components.scheduler``):
a function of ``(scheduler, extra, doc)`` that adds its models and a periodic callback,
with the dashboard's template, so the page has the dashboard's menu around it. It reads
the scheduler plugin's :class:`~runnable_dask.dashboard.state.Runs` once a second and
redraws only when the chosen run changed.
"""

from __future__ import annotations

import html
from typing import Any

from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource
from bokeh.models.widgets.inputs import Select, TextInput
from bokeh.models.widgets.markups import Div
from bokeh.models.widgets.tables import DataTable, HTMLTemplateFormatter, TableColumn

from runnable_dask.dashboard.plugin import plugin_of
from runnable_dask.dashboard.state import (
    CACHED,
    FAILED,
    NOT_RUN,
    RETRYING,
    REUSED,
    RUNNING,
    STATES,
    STOPPED,
    SUCCEEDED,
    WAITING,
    RunState,
)

PATH = "/individual-pipeline"
"""Where the page is served; the dashboard lists ``individual-*`` pages in its menu."""
REFRESH_MS = 1000
ITEMS_LISTED = 200
"""Items of a map offered in the item menu (any item can be typed in)."""
COLOURS = {
    WAITING: "#9e9e9e",
    RUNNING: "#1f77b4",
    RETRYING: "#ff7f0e",
    SUCCEEDED: "#2ca02c",
    FAILED: "#d62728",
    CACHED: "#17becf",
    REUSED: "#8c564b",
    NOT_RUN: "#c7c7c7",
    STOPPED: "#7f7f7f",
    "not chosen": "#c7c7c7",
}
_STATE_CELL = (
    '<span style="color:<%= colour %>;font-weight:bold"><%= state %></span>'
    '<% if (summary) { %> <span style="color:#555"><%= summary %></span><% } %>'
)
_STEP_CELL = (
    '<span style="padding-left:<%= indent %>px" title="<%= name %>">'
    '<% if (kind == "branch") { %><i><%= label %></i><% } else { %><%= label %><% } %></span>'
)
_COLUMNS = (
    "name",
    "label",
    "indent",
    "kind",
    "state",
    "colour",
    "summary",
    "attempts",
    "duration",
    "message",
    "log",
)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def table_data(rows: list[dict[str, Any]], catalog: str = "") -> dict[str, list[Any]]:
    """The rows as the table's columns; logs by their path in the run's catalog."""
    inside = f"{catalog}/" if catalog else ""
    data: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
    for r in rows:
        data["name"].append(r["name"])
        data["label"].append(r["label"])
        data["indent"].append(4 + 18 * r["depth"])
        data["kind"].append("" if r["kind"] == "branch" else r["kind"])
        data["state"].append(r["state"])
        data["colour"].append(COLOURS.get(r["state"], "#000"))
        data["summary"].append(r["summary"])
        data["attempts"].append(str(r["attempts"]) if r["attempts"] else "")
        data["duration"].append(_duration(r["duration"]))
        data["message"].append(r["message"])
        log = r["log"]
        data["log"].append(log[len(inside) :] if inside and log.startswith(inside) else log)
    return data


class PipelinePage:
    """The models of one open page and what it shows: a run, and per map an item."""

    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        self.run_id = ""
        self.follow = True  # show the current run, until a person picks one
        self.opened: dict[str, str] = {}
        self._drawn: tuple[Any, ...] = ()
        self._draws = 0
        self.runs = Select(title="Run", options=[], width=520)
        self.maps = Select(title="Map or loop", options=[], width=320)
        self.filter = Select(title="Items in state", value="any", options=["any", *STATES])
        self.items = Select(title="Item", options=[], width=260)
        self.typed = TextInput(title="or type an item", width=200)
        self.header = Div(sizing_mode="stretch_width")
        self.source = ColumnDataSource(table_data([]))
        self.table = DataTable(
            source=self.source,
            columns=[
                TableColumn(
                    field="label",
                    title="Step",
                    width=360,
                    formatter=HTMLTemplateFormatter(template=_STEP_CELL),
                ),
                TableColumn(field="kind", title="Kind", width=70),
                TableColumn(
                    field="state",
                    title="State",
                    width=330,
                    formatter=HTMLTemplateFormatter(template=_STATE_CELL),
                ),
                TableColumn(field="attempts", title="Attempts", width=60),
                TableColumn(field="duration", title="Duration", width=80),
                TableColumn(field="message", title="Message", width=380),
                TableColumn(field="log", title="Log (in the catalog)", width=420),
            ],
            index_position=None,
            sizing_mode="stretch_both",
            min_height=300,
        )
        self.runs.on_change("value", self._chose_run)
        self.maps.on_change("value", self._chose_list)
        self.filter.on_change("value", self._chose_list)
        self.items.on_change("value", self._chose_item)
        self.typed.on_change("value", self._chose_item)
        self.root = column(
            row(self.runs, self.maps, self.filter, self.items, self.typed),
            self.header,
            self.table,
            sizing_mode="stretch_both",
        )

    @property
    def _state(self) -> Any:
        plugin = plugin_of(self.scheduler)
        return plugin.runs if plugin else None

    def update(self) -> None:
        """Redraw if the runs, the chosen run or the choices moved since the last draw."""
        runs = self._state
        if runs is None:
            self.header.text = (
                "<p>This scheduler does not keep pipeline runs: start it with "
                "<code>--preload runnable_dask.dashboard</code>.</p>"
            )
            return
        ordered = runs.ordered()
        options = [(r.run_id, f"{r.run_id}  ({r.status})") for r in ordered]
        if options != self.runs.options:
            self.runs.options = options
        if ordered and (self.run_id not in runs.runs or self.follow):
            if self.run_id != ordered[0].run_id:
                self.run_id, self.opened = ordered[0].run_id, {}
            if self.runs.value != self.run_id:
                self.runs.value = self.run_id  # our own choice: _chose_run ignores it
        run = runs.runs.get(self.run_id)
        if run is None:
            self.header.text = "<p>No pipeline run has reached this scheduler yet.</p>"
            return
        drawn = (run.run_id, run.version, tuple(sorted(self.opened.items())), run.status)
        if drawn == self._drawn and run.status != RUNNING:
            return
        self._drawn = drawn
        self.header.text = _header(run)
        maps = run.maps()
        if maps != self.maps.options:
            self.maps.options = maps
            if self.maps.value not in maps and maps:
                self.maps.value = maps[0]
        self._list_items()
        self.source.data = table_data(run.rows(self.opened), run.catalog)
        # BokehJS redraws a table when its view's rows change, so new data with as many
        # rows would stay unseen; any change to the table itself redraws it.
        self._draws += 1
        self.table.tags = [self._draws]

    def _chose_run(self, attr: str, old: str, new: str) -> None:
        if new and new != self.run_id:  # a person's choice: keep it
            self.run_id, self.opened, self.follow = new, {}, False
            self.update()

    def _chose_list(self, attr: str, old: str, new: str) -> None:
        self._list_items()

    def _chose_item(self, attr: str, old: str, new: str) -> None:
        if new and self.maps.value:
            self.opened[self.maps.value] = new
            self.update()

    def _list_items(self) -> None:
        runs = self._state
        run = runs.runs.get(self.run_id) if runs else None
        if run is None or not self.maps.value:
            return
        wanted = self.filter.value
        listed = [
            (item, f"{item} ({state})")
            for item, state in run.item_states(self.maps.value)
            if wanted in ("any", state)
        ][:ITEMS_LISTED]
        if listed != self.items.options:
            self.items.options = listed


def _header(run: RunState) -> str:
    counts = run.counts()
    shown = ", ".join(
        f'<span style="color:{COLOURS[s]}">{counts[s]} {s}</span>' for s in STATES if counts.get(s)
    )
    summary = run.summary()
    return (
        f'<p style="margin:4px 0"><b>{html.escape(run.run_id)}</b> '
        f'<span style="color:{COLOURS.get(run.status, "#000")};font-weight:bold">'
        f"{run.status}</span> for {_duration(summary['duration'])}; steps: {shown or 'none yet'}"
        f"<br>Run log: <code>{html.escape(run.run_log)}</code> &nbsp; "
        f"Catalog: <code>{html.escape(run.catalog)}</code></p>"
    )


def pipeline_doc(scheduler: Any, extra: dict[str, Any], doc: Any) -> None:
    """The Bokeh document of the page (``distributed.dashboard.scheduler.applications``)."""
    from distributed.dashboard.components import add_periodic_callback
    from distributed.dashboard.components.scheduler import BOKEH_THEME, env

    page = PipelinePage(scheduler)
    page.update()
    add_periodic_callback(doc, page, REFRESH_MS)
    doc.title = "Dask: Pipeline"
    doc.add_root(page.root)
    doc.template = env.get_template("simple.html")
    doc.template_variables.update(extra)
    doc.theme = BOKEH_THEME
