"""Turn the events tasks report into the run log, and keep it on disk as the run goes on.

Only the driving process runs this. Writes are batched: the document is rewritten when
at least ``min_interval`` seconds, and a hundred times the last write's own duration,
have passed, so writing never takes more than about 1% of a run however many steps it
has (a map of 10,000 items, whose log is written in about 0.2 s, every 20 s or so);
the final write happens in :meth:`RunRecorder.close`, whatever happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from runnable_dask.announce import RunAnnouncer
from runnable_dask.console import RunConsole
from runnable_dask.exceptions import RunLogStoreError
from runnable_dask.plan import PLACEHOLDER, Plan, fill
from runnable_dask.progress import WIDE_PARALLEL
from runnable_dask.runtime.attempt import now
from runnable_dask.runtime.checkpoint import InProcessCheckpoints
from runnable_dask.runtime.context import Event
from runnable_dask.stores.runlog import Attempt, BranchLog, ParameterRecord, RunLog, StepLog
from runnable_dask.stores.runlog_store import RunLogStorage

WRITE_COST_FACTOR = 100
LOST_WORKER = "the worker running this attempt was lost; Dask ran the step again"


class RunRecorder:
    """Applies events to one run's log, prints progress, and writes the log.

    Events name a step by its instance (``sweep.0.1.train``) and by its template in the
    plan (``sweep.%.train``) with the items that fill it; the template says where in
    the tree the step belongs, so branches of maps and loops are placed without
    parsing names that may contain dots.
    """

    def __init__(
        self,
        run_log: RunLog,
        plan: Plan,
        store: RunLogStorage,
        console: RunConsole,
        code_identities: list[dict[str, Any]] | None = None,
        min_interval: float = 0.25,
    ) -> None:
        self.run_log = run_log
        self.store = store
        self.console = console
        self.code_identities = code_identities or []
        self.min_interval = min_interval
        self.checkpoints: InProcessCheckpoints | None = None
        """Set for a run in the driving process: stored before each write of the log."""
        self.step_listener: Callable[[StepLog, tuple[str, ...]], None] | None = None
        """Told of each step's final record and the branches it runs in (trackers)."""
        self.announcer: RunAnnouncer | None = None
        """Set to tell the scheduler (the dashboard's Pipeline page) each map's items."""
        self._branch_of: dict[str, str] = {}
        self._composite_of: dict[str, str] = {}
        self._parallel_branches: dict[str, list[str]] = {}
        self._type_of: dict[str, str] = {}
        self._quiet: set[str] = set()
        self._groups: set[str] = set()
        """Maps, and wide Parallels when the console draws bars: their branches' steps
        print only when they fail, and each branch counts as an item of the bar."""
        for branch, node in plan.nodes():
            self._branch_of[node.internal_name] = branch.internal_name
            self._type_of[node.internal_name] = node.kind
            composite = self._composite_of.get(branch.internal_name)
            if branch.internal_name in self._quiet or composite in self._groups:
                self._quiet.add(node.internal_name)
            if node.kind == "map" or (
                node.kind == "parallel"
                and console.groups is not None
                and len(node.branches) >= WIDE_PARALLEL
            ):
                self._groups.add(node.internal_name)
            for sub in node.branches:
                self._composite_of[sub.internal_name] = node.internal_name
                if node.internal_name in self._quiet:
                    self._quiet.add(sub.internal_name)
            if node.kind == "parallel":
                self._parallel_branches[node.internal_name] = [
                    b.internal_name for b in node.branches
                ]
        self._started: dict[str, tuple[float, str, tuple[str, ...], str]] = {}
        self._ended: dict[str, list[dict[str, Any]]] = {}
        self._cached_in: dict[str, int] = {}
        """Per map instance: steps inside it whose outputs came from the cache."""
        self._last_write = 0.0
        self._write_cost = 0.0
        self._dirty = False
        self._store_failed = False
        self._last_good = now()  # the driver wrote the run log when it claimed the run
        self._close_interrupted_steps()

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
            branch = self._branch(event["template"], tuple(event["items"]))
            branch.status = event["status"]
            branch.parameters = _parameters(event["parameters"])
            group = self._group_of(event["template"], tuple(event["items"]))
            if group:
                self.console.item_finished(group, branch.internal_name, branch.status == "SUCCESS")
        elif kind == "run_end":
            self._on_step(event["terminal"])
            self.run_log.parameters = _parameters(event["parameters"])
            self.run_log.status = event["status"]
        self._dirty = True
        self._write_if_due()

    def expand_map(self, template: str, items: tuple[str, ...], values: tuple[str, ...]) -> None:
        """A map's items are known: list its branches in item order before any reports."""
        branch_template = f"{template}.{PLACEHOLDER}"
        if self.announcer is not None:
            self.announcer.map_expanded(template, items, values)
        step = self._composite(template, items)
        for value in values:
            name = fill(branch_template, (*items, value))
            step.branches.setdefault(name, BranchLog(internal_name=name))
        if not self._quiet_step(template):
            self.console.group_started(fill(template, items), "map", len(values))
        self._dirty = True

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
        self._dirty = True

    def processes_ended(self, ended: list[dict[str, Any]]) -> None:
        """The run stopped early and ended these child processes of its steps: each
        stopped step's message says so, and the run log keeps the list."""
        if not ended:
            return
        self.run_log.run_config["processes_ended"] = ended
        for record in ended:
            self._ended.setdefault(record["step"], []).append(record)
        self._dirty = True

    def idle(self) -> None:
        """Nothing arrived for a while: write what is pending, so progress is visible."""
        self.console.idle()
        if self._dirty:
            self._write_if_due()

    def close(self) -> None:
        """Write the final run log, unless the store already refused a write."""
        if self.run_log.status in ("CREATED", "PROCESSING"):
            self.run_log.status = "FAIL"
        if not self._store_failed:
            self._write()

    def _close_interrupted_steps(self) -> None:
        """A resumed run's log may hold steps its driver never heard end: close them."""
        for step in self.run_log.walk():
            if step.status == "PROCESSING":
                step.status = "FAIL"
                step.message = step.message or "stopped while running: the run was interrupted"
                _end_running_attempt(step, now(), step.message)

    def _on_start(self, event: Event) -> None:
        """A step began: it shows as PROCESSING, a task with a running attempt."""
        name, template, items = event["internal_name"], event["template"], tuple(event["items"])
        branch = self._branch_of.get(template, "")
        steps = self._steps(branch, items)
        step = steps.get(name)
        started = event["start_time"]
        if step is None:
            step = steps[name] = StepLog(
                name=event["name"],
                internal_name=name,
                step_type=event["step_type"],
                status="PROCESSING",
            )
        elif step.status == "PROCESSING" and name in self._started:
            # The same step started again: Dask re-ran it after losing its worker.
            _end_running_attempt(step, started, LOST_WORKER)
        step.status = "PROCESSING"
        if step.step_type == "task":
            step.attempts.append(Attempt(attempt_number=len(step.attempts) + 1, start_time=started))
        self._started[name] = (time.monotonic(), branch, items, started)
        # A map's start is printed once its items are known, with their count.
        if not self._quiet_step(template) and step.step_type != "map":
            self.console.step_started(name, event["step_type"])
        group = self._group_of(branch, items)
        if group:
            self.console.item_started(group, fill(branch, items))

    def _on_step(self, event: Event) -> None:
        name, template, items = event["internal_name"], event["template"], tuple(event["items"])
        steps = self._steps(self._branch_of.get(template, ""), items)
        record = StepLog.model_validate(event)
        existing = steps.get(name)
        began = self._started.pop(name, None)
        if event.get("reused") and existing is not None and existing.status == "SUCCESS":
            return  # finished in the run this one resumes: its record stands
        for attempt in record.attempts:
            attempt.code_identities = self.code_identities
        if existing is not None:
            record.branches = existing.branches
            if record.step_type == "task" and not event.get("reused"):
                # An attempt still running is this one, announced, or one whose worker
                # was lost (Dask ran the step again, too quickly to announce it).
                started = event.get("started") or now()
                for attempt in existing.attempts:
                    if attempt.status == "PROCESSING" and attempt.start_time != started:
                        _end_attempt(attempt, started, LOST_WORKER)
                earlier = [a for a in existing.attempts if a.status != "PROCESSING"]
                for number, attempt in enumerate(record.attempts, start=len(earlier) + 1):
                    attempt.attempt_number = number
                record.attempts = earlier + record.attempts
        steps[name] = record
        for warning in event.get("warnings", ()):
            self.console.step_warning(name, warning)
        cached_from = record.attempts[-1].cached_from if record.attempts else None
        if self.step_listener is not None:
            self.step_listener(record, self._enclosing(template, items))
        if self._quiet_step(template) and record.status == "SUCCESS":
            if cached_from is not None:
                self._count_cached(template, items)
            return
        if cached_from is not None:
            self.console.step_cached(name, cached_from)
            return
        # A task's own times: its start was announced late, if at all.
        seconds = (
            _duration(record) if began is None or record.attempts else time.monotonic() - began[0]
        )
        self.console.step_finished(
            name,
            record.step_type,
            record.status,
            seconds,
            record.message,
            self._cached_in.pop(name, 0),
        )

    def _count_cached(self, template: str, items: tuple[str, ...]) -> None:
        """A quiet cached step: counted on the nearest map around it, whose line says so."""
        while self._branch_of.get(template):
            template = self._composite_of[self._branch_of[template]]
            if self._type_of[template] == "map":
                name = fill(template, items)
                self._cached_in[name] = self._cached_in.get(name, 0) + 1
                return

    def _enclosing(self, template: str, items: tuple[str, ...]) -> tuple[str, ...]:
        """The internal names of the branches a step runs in, outermost first."""
        found = []
        branch = self._branch_of.get(template, "")
        while branch:
            found.append(fill(branch, items))
            branch = self._branch_of.get(self._composite_of[branch], "")
        return tuple(reversed(found))

    def _group_of(self, branch: str, items: tuple[str, ...]) -> str:
        """The map or wide Parallel whose bar counts ``branch`` as an item, if drawn."""
        composite = self._composite_of.get(branch, "")
        if composite in self._groups and not self._quiet_step(composite):
            return fill(composite, items)
        return ""

    def _quiet_step(self, template: str) -> bool:
        """Steps inside map iterations print only when they fail: a map may have 10,000."""
        return template in self._quiet

    def _steps(self, branch: str, items: tuple[str, ...]) -> dict[str, StepLog]:
        if not branch:
            return self.run_log.steps
        return self._branch(branch, items).steps

    def _branch(self, branch: str, items: tuple[str, ...]) -> BranchLog:
        step = self._composite(self._composite_of[branch], items)
        name = fill(branch, items)
        found = step.branches.get(name)
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
                    for b in self._parallel_branches.get(template, [])
                },
            )
            self._started[name] = (time.monotonic(), self._branch_of[template], items, now())
            if not self._quiet_step(template):
                self.console.step_started(name, step.step_type)
                if step.step_type == "parallel" and template in self._groups:
                    self.console.group_started(name, "parallel", len(step.branches))
        return step

    def _write_if_due(self) -> None:
        elapsed = time.monotonic() - self._last_write
        if elapsed >= max(self.min_interval, WRITE_COST_FACTOR * self._write_cost):
            self._write()

    def _write(self) -> None:
        began = time.monotonic()
        if self.checkpoints is not None:
            self.checkpoints.flush()
        try:
            self.store.write(self.run_log)
        except RunLogStoreError as exc:
            self._store_failed = True
            raise RunLogStoreError(self._stopped(exc)) from None
        self._last_write = time.monotonic()
        self._last_good = now()
        self._write_cost = self._last_write - began
        self._dirty = False

    def _stopped(self, exc: RunLogStoreError) -> str:
        """A write failed mid-run: the run stops; say where its record is."""
        run_id = self.run_log.run_id
        return (
            f"{exc}. The run was stopped: a run that cannot be recorded does not go on. "
            f"The last good run log is {self.store.url(run_id)}, as written at "
            f"{self._last_good} (steps that ended since are missing from it); the steps' "
            f"logs and checkpoints are in the catalog, so once the folder is writable "
            f"`runnable-dask retry {run_id}` resumes the run"
        )


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
