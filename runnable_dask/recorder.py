"""Turn the events tasks report into the run log.

Only the driving process runs this. What the console shows of each step is
:class:`~runnable_dask.step_progress.StepProgress`'s to decide, and when the log is
written :class:`~runnable_dask.log_writer.LogWriter`'s; the driver wires the three.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from runnable_dask.announce import RunAnnouncer
from runnable_dask.log_writer import LogWriter
from runnable_dask.plan import PLACEHOLDER, fill
from runnable_dask.plan_shape import PlanShape
from runnable_dask.runtime.events import BranchEnded, Event, RunEnded, StepEnded, StepStarted
from runnable_dask.step_progress import StepProgress
from runnable_dask.stores.packed import PackedBranches
from runnable_dask.stores.runlog import Attempt, BranchLog, ParameterRecord, RunLog, StepLog
from runnable_dask.timestamps import now

LOST_WORKER = "the worker running this attempt was lost; Dask ran the step again"


class RunRecorder:
    """Applies events to one run's log; tells the progress and the writer of each change.

    Events name a step by its instance (``sweep.0.1.train``) and by its template in the
    plan (``sweep.%.train``) with the items that fill it; the template says where in
    the tree the step belongs, so branches of maps and loops are placed without
    parsing names that may contain dots.
    """

    def __init__(
        self,
        run_log: RunLog,
        shape: PlanShape,
        progress: StepProgress,
        writer: LogWriter,
        code_identities: list[dict[str, Any]] | None = None,
    ) -> None:
        self.run_log = run_log
        self.progress = progress
        self.writer = writer
        self.code_identities = code_identities or []
        self.step_listener: Callable[[StepLog, tuple[str, ...]], None] | None = None
        """Told of each step's final record and the branches it runs in (trackers)."""
        self.announcer: RunAnnouncer | None = None
        """Set to tell the scheduler (the dashboard's Pipeline page) each map's items."""
        self._shape = shape
        self._branch_of = shape.branch_of
        self._composite_of = shape.composite_of
        self._type_of = shape.type_of
        self._started: dict[str, tuple[float, str, tuple[str, ...], str]] = {}
        self._ended: dict[str, list[dict[str, Any]]] = {}
        self._close_interrupted_steps()

    @property
    def unfinished(self) -> list[str]:
        """Steps that reported a start but not yet an end."""
        return list(self._started)

    def apply(self, event: Event) -> None:
        """Record one event from a task."""
        if isinstance(event, StepStarted):
            self._on_start(event)
        elif isinstance(event, StepEnded):
            self._on_step(event)
        elif isinstance(event, BranchEnded):
            self._on_step(event.terminal)
            branch = self._branch(event.template, event.items)
            branch.status = event.status  # type: ignore[assignment]
            branch.parameters = _parameters(event.parameters)
            ok = branch.status == "SUCCESS"
            self.progress.branch_ended(event.template, event.items, branch.internal_name, ok)
            self._pack(event.template, event.items)
        elif isinstance(event, RunEnded):
            self._on_step(event.terminal)
            self.run_log.parameters = _parameters(event.parameters)
            self.run_log.status = event.status  # type: ignore[assignment]
        self.writer.changed()

    def expand_map(self, template: str, items: tuple[str, ...], values: tuple[str, ...]) -> None:
        """A map's items are known: list its branches in item order before any reports."""
        branch_template = f"{template}.{PLACEHOLDER}"
        if self.announcer is not None:
            self.announcer.map_expanded(template, items, values)
        step = self._composite(template, items)
        branches = _packed(step)
        branches.placeholders([fill(branch_template, (*items, value)) for value in values])
        self.progress.map_expanded(template, items, len(values))
        self.writer.pending()

    def fail_run(self, message: str, culprit: str | None = None) -> None:
        """The run could not finish (a cluster error, an interrupt): record it as FAIL.

        ``culprit`` is the step Dask blamed (the task that killed its workers); it is
        recorded even when its worker died before its start could be reported.
        """
        self.run_log.status = "FAIL"
        self.run_log.run_config["error"] = message
        branch = self._branch_of.get(culprit or "", "")
        steps = self._steps(branch, ()) if culprit is not None else {}
        # A step that reported its end keeps its record; any other blamed step gets one.
        if culprit is not None and culprit not in self._started and culprit not in steps:
            steps[culprit] = StepLog(
                name=culprit.rsplit(".", 1)[-1],
                internal_name=culprit,
                step_type=self._type_of[culprit],
            )
            self._started[culprit] = (time.monotonic(), branch, (), now())
        for internal_name, (_, branch, items, _) in self._started.items():
            step = self._steps(branch, items)[internal_name]
            step.status = "FAIL"
            step.message = step.message or f"stopped while running: {message}"
            ended = self._ended.get(internal_name)
            if ended and "ended its" not in step.message:
                pids = ", ".join(f"{r['pid']} on {r['host']}" for r in ended)
                step.message += f"; ended its processes ({pids})"
            _end_running_attempt(step, now(), step.message)
        self.writer.pending()

    def processes_ended(self, ended: list[dict[str, Any]]) -> None:
        """The run stopped early and ended these child processes of its steps: each
        stopped step's message says so, and the run log keeps the list."""
        if not ended:
            return
        self.run_log.run_config["processes_ended"] = ended
        for record in ended:
            self._ended.setdefault(record["step"], []).append(record)
        self.writer.pending()

    def close(self) -> None:
        """The run is over: a run still going is recorded as failed, and written."""
        if self.run_log.status in ("CREATED", "PROCESSING"):
            self.run_log.status = "FAIL"
        self.writer.close()

    def _close_interrupted_steps(self) -> None:
        """A resumed run's log may hold steps its driver never heard end: close them."""
        for step in _live_steps(self.run_log.steps):
            if step.status == "PROCESSING":
                step.status = "FAIL"
                step.message = step.message or "stopped while running: the run was interrupted"
                _end_running_attempt(step, now(), step.message)

    def _on_start(self, event: StepStarted) -> None:
        """A step began: it shows as PROCESSING, a task with a running attempt."""
        name, template, items = event.internal_name, event.template, event.items
        branch = self._branch_of.get(template, "")
        steps = self._steps(branch, items)
        step = steps.get(name)
        started = event.start_time
        if step is None:
            step = steps[name] = StepLog(
                name=event.name,
                internal_name=name,
                step_type=event.step_type,
                status="PROCESSING",
            )
        elif step.status == "PROCESSING" and name in self._started:
            # The same step started again: Dask re-ran it after losing its worker.
            _end_running_attempt(step, started, LOST_WORKER)
        step.status = "PROCESSING"
        if step.step_type == "task":
            step.attempts.append(Attempt(attempt_number=len(step.attempts) + 1, start_time=started))
        self._started[name] = (time.monotonic(), branch, items, started)
        self.progress.step_started(name, template, items, step.step_type)

    def _on_step(self, event: StepEnded) -> None:
        name, template, items = event.internal_name, event.template, event.items
        steps = self._steps(self._branch_of.get(template, ""), items)
        record = StepLog.model_validate(event, from_attributes=True)
        existing = steps.get(name)
        began = self._started.pop(name, None)
        if event.reused and existing is not None and existing.status == "SUCCESS":
            return  # finished in the run this one resumes: its record stands
        for attempt in record.attempts:
            attempt.code_identities = self.code_identities
        if existing is not None:
            record.branches = existing.branches
            if record.step_type == "task" and not event.reused:
                # An attempt still running is this one, announced, or one whose worker
                # was lost (Dask ran the step again, too quickly to announce it).
                started = event.started or now()
                for attempt in existing.attempts:
                    if attempt.status == "PROCESSING" and attempt.start_time != started:
                        _end_attempt(attempt, started, LOST_WORKER)
                earlier = [a for a in existing.attempts if a.status != "PROCESSING"]
                for number, attempt in enumerate(record.attempts, start=len(earlier) + 1):
                    attempt.attempt_number = number
                record.attempts = earlier + record.attempts
        steps[name] = record
        if self.step_listener is not None:
            self.step_listener(record, self._shape.enclosing(template, items))
        since = began[0] if began is not None else None
        self.progress.step_ended(record, template, items, since, event.warnings)

    def _steps(self, branch: str, items: tuple[str, ...]) -> dict[str, StepLog]:
        if not branch:
            return self.run_log.steps
        return self._branch(branch, items).steps

    def _branch(self, branch: str, items: tuple[str, ...]) -> BranchLog:
        step = self._composite(self._composite_of[branch], items)
        name = fill(branch, items)
        branches = step.branches
        found = branches.live(name) if isinstance(branches, PackedBranches) else branches.get(name)
        if found is None:
            found = step.branches[name] = BranchLog(internal_name=name)
        return found

    def _composite(self, template: str, items: tuple[str, ...]) -> StepLog:
        """The composite step's record, made when its first branch reports."""
        siblings = self._steps(self._branch_of[template], items)
        name = fill(template, items)
        step = siblings.get(name)
        if step is None:
            step = siblings[name] = StepLog(
                name=template.rsplit(".", 1)[-1],
                internal_name=name,
                step_type=self._type_of[template],
                branches={
                    fill(b, items): BranchLog(internal_name=fill(b, items))
                    for b in self._shape.parallel_branches.get(template, [])
                },
            )
            if step.step_type == "map":
                _packed(step)
            self._started[name] = (time.monotonic(), self._branch_of[template], items, now())
            self.progress.composite_opened(name, template, step.step_type, len(step.branches))
        return step

    def _pack(self, branch: str, items: tuple[str, ...]) -> None:
        """A map item ended: its branch is kept as JSON from now on (see stores.packed)."""
        step = self._composite(self._composite_of[branch], items)
        if isinstance(step.branches, PackedBranches):
            step.branches.pack(fill(branch, items))


def _packed(step: StepLog) -> PackedBranches:
    """The map step's branches as a PackedBranches, its ended branches packed and
    compressed (a resumed run's log has a dict, or spans of the document it was read
    from: the driver does not keep that document)."""
    branches = step.branches
    if not isinstance(branches, PackedBranches):
        step.branches = branches = PackedBranches(branches)
        for name, branch in dict.items(branches):
            if branch.status in ("SUCCESS", "FAIL"):
                branches.pack(name)
    branches.compact()
    return branches


def _live_steps(steps: dict[str, StepLog]) -> Iterator[StepLog]:
    """Every step, as objects the recorder keeps: a map's packed items that had begun
    and not ended are unpacked for it (the others hold no running step)."""
    for step in steps.values():
        yield step
        branches = step.branches
        if isinstance(branches, PackedBranches):
            for name in branches.unfinished():
                branches.live(name)
            chosen = list(branches.live_values())
        else:
            chosen = list(branches.values())
        for branch in chosen:
            yield from _live_steps(branch.steps)


def _parameters(records: dict[str, Any]) -> dict[str, ParameterRecord]:
    return {name: ParameterRecord.model_validate(r) for name, r in records.items()}


def _end_running_attempt(step: StepLog, ended: str, message: str) -> None:
    """The step's running attempt ended without a report: its worker or driver was lost."""
    for attempt in step.attempts:
        if attempt.status == "PROCESSING":
            _end_attempt(attempt, ended, message)


def _end_attempt(attempt: Attempt, ended: str, message: str) -> None:
    attempt.status = "FAIL"
    attempt.end_time = ended
    attempt.message = message
