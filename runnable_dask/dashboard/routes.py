"""The Pipeline page's data as JSON, on the dashboard's web server.

Loaded through ``distributed.scheduler.http.routes`` (a module with a ``routes`` list of
``(path, handler, kwargs)``, as ``distributed.http.scheduler.json``):

- ``/runnable-dask/runs``: every run the scheduler has seen, running ones first, newest
  first within each: id, status, start, end, duration, steps by state, run log, catalog;
- ``/runnable-dask/runs/<run_id>``: that run's summary, its steps by state as ``counts``
  and its tree as ``steps`` (one row per step, branch, map and opened item, depth first);
  ``?open=<map>=<item>`` (repeatable) chooses the item shown of a map or loop instance,
  else a failed, else a running one;
- ``/runnable-dask/runs/<run_id>/items?map=<map instance>&state=failed&limit=100``:
  a map's or loop's items with their states, for drilling down.
"""

from __future__ import annotations

from typing import Any

from distributed.http.utils import RequestHandler

from runnable_dask.dashboard.plugin import plugin_of
from runnable_dask.dashboard.state import RunState


class _RunsHandler(RequestHandler):
    def _run(self, run_id: str) -> RunState | None:
        plugin = plugin_of(self.server)
        run = plugin.runs.runs.get(run_id) if plugin else None
        if run is None:
            self.set_status(404)
            self.write({"error": f"no run {run_id!r} on this scheduler; see /runnable-dask/runs"})
        return run


class RunsJSON(_RunsHandler):
    def get(self) -> None:
        plugin = plugin_of(self.server)
        runs = plugin.runs.ordered() if plugin else []
        self.write({"runs": [run.summary() for run in runs]})


class RunJSON(_RunsHandler):
    def get(self, run_id: str) -> None:
        run = self._run(run_id)
        if run is None:
            return
        opened = dict(value.split("=", 1) for value in self.get_arguments("open") if "=" in value)
        steps = run.rows(opened)
        summary = run.summary()
        counts = summary.pop("steps")  # the list's name for them; here ``steps`` is the tree
        self.write({**summary, "counts": counts, "steps": steps, "maps": _maps(steps)})


class ItemsJSON(_RunsHandler):
    def get(self, run_id: str) -> None:
        run = self._run(run_id)
        if run is None:
            return
        composite = self.get_argument("map", "")
        state = self.get_argument("state", "")
        limit = int(self.get_argument("limit", "1000"))
        items = [
            {"item": item, "state": s}
            for item, s in run.item_states(composite)
            if not state or s == state
        ]
        self.write({"map": composite, "total": len(items), "items": items[:limit]})


def _maps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": s["name"], **s["items"]} for s in steps if "items" in s]


routes: list[tuple[str, type, dict[str, Any]]] = [
    (r"runnable-dask/runs", RunsJSON, {}),
    (r"runnable-dask/runs/([^/]+)", RunJSON, {}),
    (r"runnable-dask/runs/([^/]+)/items", ItemsJSON, {}),
]
