"""Tell the scheduler what a run looks like, for the dashboard's Pipeline page.

Tasks already report every step on the run's topic (``runnable-dask/<run_id>``); what
only the driving process knows goes to one more topic, :data:`RUNS_TOPIC`: the plan's
tree when the run starts (internal names, kinds, branches: a few KB) and each map's
items once its list is known. A scheduler without the page keeps these few messages in
its event log and does nothing else with them. In-process runs (no scheduler) send none.
"""

from __future__ import annotations

from typing import Any

from runnable_dask.plan import Branch, Plan

RUNS_TOPIC = "runnable-dask-runs"
"""The scheduler's event topic for what the driving process knows about its runs."""
RUN_TOPIC_PREFIX = "runnable-dask/"
"""Tasks report a run's events on ``runnable-dask/<run_id>``."""


def plan_tree(plan: Plan) -> list[dict[str, Any]]:
    """The plan's steps as nested plain data: name, label, kind and branches (terminals
    are left out: they are where a branch ends, not steps a person watches)."""
    return _nodes(plan.root)


def _nodes(branch: Branch) -> list[dict[str, Any]]:
    return [
        {
            "name": node.internal_name,
            "label": node.name,
            "kind": node.kind,
            "branches": [
                {"name": sub.internal_name, "key": sub.key, "steps": _nodes(sub)}
                for sub in node.branches
            ],
        }
        for node in branch.nodes
        if node.kind not in ("success", "fail")
    ]


class RunAnnouncer:
    """Sends one run's plan and map expansions to the scheduler (or nothing, without one)."""

    def __init__(self, client: Any, run_id: str) -> None:
        self._client = client
        self.run_id = run_id

    def started(self, plan: Plan, run_log_path: str, catalog: str, started: str) -> None:
        self._send(
            {
                "op": "plan",
                "tree": plan_tree(plan),
                "run_log": run_log_path,
                "catalog": catalog,
                "started": started,
                "client": getattr(self._client, "id", ""),
            }
        )

    def map_expanded(self, template: str, items: tuple[str, ...], values: tuple[str, ...]) -> None:
        self._send({"op": "expand", "template": template, "items": items, "values": values})

    def _send(self, message: dict[str, Any]) -> None:
        if self._client is None:
            return
        try:
            self._client.log_event(RUNS_TOPIC, {"run_id": self.run_id, **message})
        except Exception:  # the page is a view: a lost message must not fail the run
            return
