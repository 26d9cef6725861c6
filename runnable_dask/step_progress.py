"""What the console shows of a run's steps as the run log is built.

The run log records every step; the console would drown in a map of 10,000 items. So
steps inside maps (and wide Parallels, when the console draws bars) print only when they
fail, each of their branches counts as an item of the group's bar, and a quiet step
whose outputs came from the cache is counted on the line of the map around it.
"""

from __future__ import annotations

import time
from datetime import datetime

from runnable_dask.console import RunConsole
from runnable_dask.plan import Plan, fill
from runnable_dask.plan_shape import PlanShape
from runnable_dask.progress import WIDE_PARALLEL
from runnable_dask.stores.runlog import StepLog


class StepProgress:
    """Told by the recorder what happened to each step; decides what the console shows."""

    def __init__(self, console: RunConsole, plan: Plan, shape: PlanShape) -> None:
        self.console = console
        self._shape = shape
        self._quiet: set[str] = set()
        self._groups: set[str] = set()
        """Maps, and wide Parallels when the console draws bars: their branches' steps
        print only when they fail, and each branch counts as an item of the bar."""
        for branch, node in plan.nodes():
            composite = shape.composite_of.get(branch.internal_name)
            if branch.internal_name in self._quiet or composite in self._groups:
                self._quiet.add(node.internal_name)
            if node.kind == "map" or (
                node.kind == "parallel"
                and console.groups is not None
                and len(node.branches) >= WIDE_PARALLEL
            ):
                self._groups.add(node.internal_name)
            for sub in node.branches:
                if node.internal_name in self._quiet:
                    self._quiet.add(sub.internal_name)
        self._cached_in: dict[str, int] = {}
        """Per map instance: steps inside it whose outputs came from the cache."""

    def idle(self) -> None:
        """Nothing arrived for a while: the console draws what it held back."""
        self.console.idle()

    def step_started(self, name: str, template: str, items: tuple[str, ...], kind: str) -> None:
        """A task or composite began (a map's start is printed once its items are known,
        with their count)."""
        if not self._quiet_step(template) and kind != "map":
            self.console.step_started(name, kind)
        branch = self._shape.branch_of.get(template, "")
        group = self._group_of(branch, items)
        if group:
            self.console.item_started(group, fill(branch, items))

    def composite_opened(self, name: str, template: str, kind: str, branches: int) -> None:
        """A composite's record was made, when its first branch reported."""
        if not self._quiet_step(template):
            self.console.step_started(name, kind)
            if kind == "parallel" and template in self._groups:
                self.console.group_started(name, "parallel", branches)

    def map_expanded(self, template: str, items: tuple[str, ...], count: int) -> None:
        if not self._quiet_step(template):
            self.console.group_started(fill(template, items), "map", count)

    def step_ended(
        self,
        record: StepLog,
        template: str,
        items: tuple[str, ...],
        began: float | None,
        warnings: tuple[str, ...],
    ) -> None:
        """A step's record arrived; ``began`` is when its start was heard (monotonic)."""
        name = record.internal_name
        for warning in warnings:
            self.console.step_warning(name, warning)
        cached_from = record.attempts[-1].cached_from if record.attempts else None
        if self._quiet_step(template) and record.status == "SUCCESS":
            if cached_from is not None:
                self._count_cached(template, items)
            return
        if cached_from is not None:
            self.console.step_cached(name, cached_from)
            return
        # A task's own times: its start was announced late, if at all.
        seconds = (
            _duration(record) if began is None or record.attempts else time.monotonic() - began
        )
        self.console.step_finished(
            name,
            record.step_type,
            record.status,
            seconds,
            record.message,
            self._cached_in.pop(name, 0),
        )

    def branch_ended(self, template: str, items: tuple[str, ...], name: str, ok: bool) -> None:
        group = self._group_of(template, items)
        if group:
            self.console.item_finished(group, name, ok)

    def _count_cached(self, template: str, items: tuple[str, ...]) -> None:
        """A quiet cached step: counted on the nearest map around it, whose line says so."""
        shape = self._shape
        while shape.branch_of.get(template):
            template = shape.composite_of[shape.branch_of[template]]
            if shape.type_of[template] == "map":
                name = fill(template, items)
                self._cached_in[name] = self._cached_in.get(name, 0) + 1
                return

    def _group_of(self, branch: str, items: tuple[str, ...]) -> str:
        """The map or wide Parallel whose bar counts ``branch`` as an item, if drawn."""
        composite = self._shape.composite_of.get(branch, "")
        if composite in self._groups and not self._quiet_step(composite):
            return fill(composite, items)
        return ""

    def _quiet_step(self, template: str) -> bool:
        """Steps inside map iterations print only when they fail: a map may have 10,000."""
        return template in self._quiet


def _duration(step: StepLog) -> float:
    if not step.attempts:
        return 0.0
    first, last = step.attempts[0], step.attempts[-1]
    try:
        return (
            datetime.fromisoformat(last.end_time) - datetime.fromisoformat(first.start_time)
        ).total_seconds()
    except ValueError:
        return 0.0
