"""Turn the events tasks report into the run log, and keep it on disk as the run goes on.

Only the driving process runs this. Writes are batched: the document is rewritten when
at least ``min_interval`` seconds, and twenty times the last write's own duration, have
passed, so writing never takes more than about 5% of a run however many steps it has;
the final write happens in :meth:`RunRecorder.close`, whatever happened.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from runnable_dask.console import RunConsole
from runnable_dask.plan import Plan
from runnable_dask.runtime.context import Event
from runnable_dask.stores.runlog import BranchLog, ParameterRecord, RunLog, StepLog
from runnable_dask.stores.runlog_store import RunLogStore


class RunRecorder:
    """Applies events to one run's log, prints progress, and writes the log."""

    def __init__(
        self,
        run_log: RunLog,
        plan: Plan,
        store: RunLogStore,
        console: RunConsole,
        code_identities: list[dict[str, Any]] | None = None,
        min_interval: float = 0.25,
    ) -> None:
        self.run_log = run_log
        self.store = store
        self.console = console
        self.code_identities = code_identities or []
        self.min_interval = min_interval
        self._branch_of: dict[str, str] = {}
        self._composite_of: dict[str, str] = {}
        self._branches_of: dict[str, list[str]] = {}
        self._started: dict[str, float] = {}
        self._type_of: dict[str, str] = {}
        for branch, node in plan.nodes():
            self._branch_of[node.internal_name] = branch.internal_name
            self._type_of[node.internal_name] = node.kind
            for sub in node.branches:
                self._composite_of[sub.internal_name] = node.internal_name
            self._branches_of[node.internal_name] = [b.internal_name for b in node.branches]
        self._last_write = 0.0
        self._write_cost = 0.0
        self._dirty = False

    @property
    def unfinished(self) -> list[str]:
        """Steps that reported a start but not yet an end."""
        return list(self._started)

    def apply(self, event: Event) -> None:
        """Record one event from a task."""
        kind = event["event"]
        if kind == "start":
            self._on_start(event)
        elif kind == "step":
            self._on_step(event)
        elif kind == "branch":
            self._on_step(event["terminal"])
            branch = self._branch(event["internal_name"])
            branch.status = event["status"]
            branch.parameters = _parameters(event["parameters"])
        elif kind == "run_end":
            self._on_step(event["terminal"])
            self.run_log.parameters = _parameters(event["parameters"])
            self.run_log.status = event["status"]
        self._dirty = True
        self._write_if_due()

    def fail_run(self, message: str, culprit: str | None = None) -> None:
        """The run could not finish (a cluster error, an interrupt): record it as FAIL.

        ``culprit`` is the step Dask blamed (the task that killed its workers); it is
        recorded even when its worker died before its start could be reported.
        """
        self.run_log.status = "FAIL"
        self.run_log.run_config["error"] = message
        if culprit is not None and culprit not in self._started:
            self._steps(self._branch_of.get(culprit, ""))[culprit] = StepLog(
                name=culprit.rsplit(".", 1)[-1],
                internal_name=culprit,
                step_type=self._type_of[culprit],
            )
            self._started[culprit] = time.monotonic()
        for internal_name in self.unfinished:
            step = self._steps(self._branch_of.get(internal_name, ""))[internal_name]
            step.status = "FAIL"
            step.message = step.message or f"stopped while running: {message}"
        self._dirty = True

    def idle(self) -> None:
        """Nothing arrived for a while: write what is pending, so progress is visible."""
        if self._dirty:
            self._write_if_due()

    def close(self) -> None:
        """Write the final run log."""
        if self.run_log.status in ("CREATED", "PROCESSING"):
            self.run_log.status = "FAIL"
        self._write()

    def _on_start(self, event: Event) -> None:
        name = event["internal_name"]
        self._started[name] = time.monotonic()
        steps = self._steps(self._branch_of.get(name, ""))
        steps[name] = StepLog(
            name=event["name"],
            internal_name=name,
            step_type=event["step_type"],
            status="PROCESSING",
        )
        self.console.step_started(name, event["step_type"])

    def _on_step(self, event: Event) -> None:
        name = event["internal_name"]
        steps = self._steps(self._branch_of.get(name, ""))
        record = StepLog.model_validate(event)
        for attempt in record.attempts:
            attempt.code_identities = self.code_identities
        existing = steps.get(name)
        if existing is not None:
            record.branches = existing.branches
        steps[name] = record
        began = self._started.pop(name, None)
        seconds = _duration(record) if began is None else time.monotonic() - began
        self.console.step_finished(name, record.step_type, record.status, seconds, record.message)

    def _steps(self, branch_name: str) -> dict[str, StepLog]:
        if not branch_name:
            return self.run_log.steps
        return self._branch(branch_name).steps

    def _branch(self, branch_name: str) -> BranchLog:
        composite = self._composite_of[branch_name]
        siblings = self._steps(self._branch_of[composite])
        step = siblings.get(composite)
        if step is None:
            step = StepLog(
                name=composite.rsplit(".", 1)[-1],
                internal_name=composite,
                step_type="parallel",
                branches={b: BranchLog(internal_name=b) for b in self._branches_of[composite]},
            )
            siblings[composite] = step
            self._started[composite] = time.monotonic()
            self.console.step_started(composite, "parallel")
        return step.branches[branch_name]

    def _write_if_due(self) -> None:
        elapsed = time.monotonic() - self._last_write
        if elapsed >= max(self.min_interval, 20 * self._write_cost):
            self._write()

    def _write(self) -> None:
        began = time.monotonic()
        self.store.write(self.run_log)
        self._last_write = time.monotonic()
        self._write_cost = self._last_write - began
        self._dirty = False


def _parameters(records: dict[str, Any]) -> dict[str, ParameterRecord]:
    return {name: ParameterRecord.model_validate(r) for name, r in records.items()}


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
