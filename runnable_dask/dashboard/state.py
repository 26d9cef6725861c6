"""What the Pipeline page knows about runs: built from the events a run already sends.

The driving process announces a run's plan (its tree of steps) and each map's items on
``runnable-dask-runs``; tasks report starts, retries and ends on ``runnable-dask/<run_id>``.
:class:`Runs` applies both and answers the page and the JSON routes: the runs, current
first, and one run as rows of its tree. A map or loop is one row of counts by state and
the rows of one opened item, so a map of 10,000 items costs a page the same as one of
ten. No Dask and no Bokeh here: the scheduler plugin feeds it, the page reads it.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from typing import Any

from runnable_dask.plan import PLACEHOLDER, fill
from runnable_dask.runtime.events import (
    BranchEnded,
    Event,
    RunEnded,
    StepEnded,
    StepRetrying,
    StepStarted,
)

WAITING, RUNNING, RETRYING = "waiting", "running", "retrying"
SUCCEEDED, FAILED, NOT_RUN = "succeeded", "failed", "not run"
CACHED, REUSED, STOPPED = "cached", "reused", "stopped"
STATES = (WAITING, RUNNING, RETRYING, SUCCEEDED, FAILED, CACHED, REUSED, NOT_RUN, STOPPED)
"""Every state a step, an item or a run shows. ``cached``: a step whose result came from
the step cache (its attempt names the run that produced it, ``cached_from``, as the run
log records it: the event needs nothing more); ``reused``: a resumed run's step that had
finished in the run it resumes."""
MAX_RUNS = 20
"""Runs kept per scheduler (each holds a record per step it ran); the oldest finished
ones go first."""
_TASK_KINDS = ("task", "stub")
_FINAL = {"SUCCESS": SUCCEEDED, "FAIL": FAILED}


def _seconds(stamp: str | None) -> float | None:
    try:
        return datetime.fromisoformat(stamp).timestamp() if stamp else None
    except ValueError:
        return None


class StepState:
    """One step instance as the page shows it."""

    __slots__ = ("attempts", "end", "kind", "label", "message", "start", "state")

    def __init__(self, kind: str, label: str) -> None:
        self.kind = kind
        self.label = label
        self.state = WAITING
        self.start: float | None = None
        self.end: float | None = None
        self.attempts = 0
        self.message = ""


class RunState:
    """One run: its plan, its steps' states, its branches and its maps' items."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.status = RUNNING
        self.started = time.time()
        self.ended: float | None = None
        self.tree: list[dict[str, Any]] = []
        self.run_log = ""
        self.catalog = ""
        self.client = ""
        self.steps: dict[str, StepState] = {}
        self.branch_end: dict[str, str] = {}  # branch instance -> succeeded / failed
        self.active: set[str] = set()  # branch instances in which a step was heard of
        self.items: dict[str, dict[str, None]] = {}  # map/loop instance -> its items
        self.version = 0  # bumped on every change: the page redraws only when it moved
        self._branch_of: dict[str, str] = {}  # node template -> its branch template
        self._composite_of: dict[str, str] = {}  # branch template -> its composite
        self._since: dict[str, float] = {}  # composite instance -> when a branch began
        # Kept as events arrive, so that a map of 10,000 items is not counted per read:
        self._tally: Counter[str] = Counter()  # task and stub steps by state
        self._item_tally: dict[str, Counter[str]] = {}  # map/loop -> items active, ended
        self._running_items: dict[str, dict[str, None]] = {}
        self._failed_items: dict[str, dict[str, None]] = {}

    # --- what arrives -----------------------------------------------------------------

    def planned(self, message: dict[str, Any]) -> None:
        self.tree = message.get("tree") or []
        self.run_log = message.get("run_log", "")
        self.catalog = message.get("catalog", "")
        self.client = message.get("client", "")
        self.started = _seconds(message.get("started")) or self.started
        self._index(self.tree, "")
        self.version += 1

    def _index(self, nodes: list[dict[str, Any]], branch: str) -> None:
        for node in nodes:
            self._branch_of[node["name"]] = branch
            for sub in node["branches"]:
                self._composite_of[sub["name"]] = node["name"]
                self._index(sub["steps"], sub["name"])

    def expanded(self, template: str, items: tuple[str, ...], values: list[str]) -> None:
        """A map's list is known: its items, in order, before any of them reports."""
        known = self.items.setdefault(fill(template, items), {})
        if not known:
            self.items[fill(template, items)] = dict.fromkeys(values)
        else:
            known.update(dict.fromkeys(values))
        self.version += 1

    def apply(self, event: Event) -> None:
        """One event from a task (see runnable_dask.runtime.events for their kinds)."""
        if isinstance(event, StepStarted):
            step = self._step(event)
            started = _seconds(event.start_time) or time.time()
            if step.state == RETRYING and started == step.start:
                return  # announced late: this run of the step is retrying already
            if step.state in (SUCCEEDED, FAILED, RUNNING):  # Dask ran it again
                step.attempts += 1
            step.attempts = max(step.attempts, 1) if step.kind in _TASK_KINDS else 0
            self._set(step, RUNNING)
            step.start = started
            step.end = None
        elif isinstance(event, StepRetrying):
            step = self._step(event)
            self._set(step, RETRYING)
            step.attempts = event.attempt
            step.message = event.message
            step.start = step.start or _seconds(event.start_time)
        elif isinstance(event, StepEnded):
            self._ended(event)
        elif isinstance(event, (BranchEnded, RunEnded)):
            self._heard(event.terminal.template, event.terminal.items)
            final = _FINAL.get(event.status, FAILED)
            if isinstance(event, BranchEnded):
                self._branch_ended(event.internal_name, event.template, event.items, final)
            else:
                self.status, self.ended = final, time.time()
        self.version += 1

    def _ended(self, event: StepEnded) -> None:
        step = self._step(event)
        attempts = event.attempts
        if event.reused:
            self._set(step, REUSED)
        elif attempts and attempts[-1].get("cached_from"):
            self._set(step, CACHED)
        else:
            self._set(step, _FINAL.get(event.status, FAILED))
        step.message = event.message
        if attempts:
            step.start = step.start or _seconds(attempts[0].get("start_time"))
            step.end = _seconds(attempts[-1].get("end_time"))
            step.attempts = max(step.attempts, len(attempts))
            failed = [a for a in attempts if a.get("status") == "FAIL"]
            if step.state == SUCCEEDED and failed:
                step.message = f"after {len(failed)} failed: {failed[-1].get('message', '')}"
        else:  # a composite's end: it began when the first of its branches did
            step.end = time.time()
            step.start = step.start or self._since.get(event.internal_name, step.end)

    def _set(self, step: StepState, state: str) -> None:
        if step.kind in _TASK_KINDS:
            self._tally[step.state] -= 1
            self._tally[state] += 1
        step.state = state

    def _branch_ended(
        self, instance: str, template: str, items: tuple[str, ...], final: str
    ) -> None:
        if instance in self.branch_end:
            return
        self.branch_end[instance] = final
        if template.endswith(PLACEHOLDER):  # a map item or loop iteration
            composite = fill(self._composite_of.get(template, ""), tuple(items))
            item = items[template.count(PLACEHOLDER) - 1]
            self._item_tally.setdefault(composite, Counter())[final] += 1
            self._running_items.get(composite, {}).pop(item, None)
            if final == FAILED:
                self._failed_items.setdefault(composite, {})[item] = None

    def stopped(self) -> None:
        """The driving process left before the run's end was reported."""
        if self.status == RUNNING:
            self.status, self.ended = STOPPED, time.time()
            self.version += 1

    def _step(self, event: StepStarted | StepRetrying | StepEnded) -> StepState:
        name = event.internal_name
        step = self.steps.get(name)
        if step is None:
            step = self.steps[name] = StepState(event.step_type, event.name)
            if step.kind in _TASK_KINDS:
                self._tally[WAITING] += 1
            self._heard(event.template, event.items)
        return step

    def _heard(self, template: str, items: tuple[str, ...]) -> None:
        """A step of ``template`` was heard of: every branch around it is active, and
        each map or loop around it has this item."""
        branch = self._branch_of.get(template, "")
        while branch:
            instance = fill(branch, items)
            if instance in self.active:
                return  # and so is every branch around it
            self.active.add(instance)
            composite = self._composite_of[branch]
            self._since.setdefault(fill(composite, items), time.time())
            if branch.endswith(PLACEHOLDER):
                at, item = fill(composite, items), items[branch.count(PLACEHOLDER) - 1]
                self.items.setdefault(at, {})[item] = None
                self._item_tally.setdefault(at, Counter())["active"] += 1
                self._running_items.setdefault(at, {})[item] = None
            branch = self._branch_of.get(composite, "")

    # --- what the page reads ----------------------------------------------------------

    def item_state(self, branch: str) -> str:
        """The state of a map item's or loop iteration's branch instance."""
        ended = self.branch_end.get(branch)
        if ended:
            return ended
        return RUNNING if branch in self.active else WAITING

    def item_states(self, composite: str) -> list[tuple[str, str]]:
        """Each item of a map or loop instance with its state, in item order."""
        prefix = f"{composite}."
        return [(item, self.item_state(prefix + item)) for item in self.items.get(composite, ())]

    def counts(self) -> dict[str, int]:
        """Task and stub steps by state, the whole run."""
        return {state: n for state, n in self._tally.items() if n > 0}

    def item_counts(self, composite: str) -> dict[str, int]:
        """A map's or loop's items by state, from what was kept as events arrived."""
        tally = self._item_tally.get(composite, Counter())
        ended = tally[SUCCEEDED] + tally[FAILED]
        counts = {
            WAITING: len(self.items.get(composite, ())) - tally["active"],
            RUNNING: tally["active"] - ended,
            SUCCEEDED: tally[SUCCEEDED],
            FAILED: tally[FAILED],
        }
        return {state: n for state, n in counts.items() if n > 0}

    def maps(self) -> list[str]:
        """The map and loop instances heard of, in the order they were."""
        return list(self.items)

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "started": _iso(self.started),
            "ended": _iso(self.ended),
            "duration": (self.ended or time.time()) - self.started,
            "steps": self.counts(),
            "run_log": self.run_log,
            "catalog": self.catalog,
        }

    def rows(self, opened: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """The run's tree as rows, depth first; ``opened`` names, per map or loop instance,
        the item whose steps are shown (by default the first failed, else running, item)."""
        if not self.tree:  # no plan was announced: every step heard of, by name
            return [self._row(name, s, 0) for name, s in sorted(self.steps.items())]
        rows: list[dict[str, Any]] = []
        self._walk(self.tree, (), 0, self.status != RUNNING, opened or {}, rows)
        return rows

    def _walk(
        self,
        nodes: list[dict[str, Any]],
        items: tuple[str, ...],
        depth: int,
        closed: bool,
        opened: dict[str, str],
        rows: list[dict[str, Any]],
    ) -> None:
        for node in nodes:
            name = fill(node["name"], items)
            step = self.steps.get(name)
            row = self._row(name, step, depth, node)
            if step is None and node["kind"] in ("parallel", "map", "loop", "conditional"):
                heard = any(fill(b["name"], items) in self.active for b in node["branches"])
                row["state"] = RUNNING if heard else row["state"]
            if row["state"] == WAITING and closed:
                row["state"] = NOT_RUN
            rows.append(row)
            done = closed or row["state"] not in (WAITING, RUNNING, RETRYING)
            if node["kind"] in ("map", "loop"):
                self._walk_items(node, name, items, depth, done, opened, row, rows)
                continue
            for branch in node["branches"]:
                instance = fill(branch["name"], items)
                state = self.item_state(instance)
                if state == WAITING and done:
                    chosen = node["kind"] == "conditional" and row["state"] != NOT_RUN
                    state = "not chosen" if chosen else NOT_RUN
                rows.append(
                    _branch_row(instance, branch["key"], depth + 1, state, node["kind"], name)
                )
                ended = done or instance in self.branch_end
                self._walk(branch["steps"], items, depth + 2, ended, opened, rows)

    def _walk_items(
        self,
        node: dict[str, Any],
        name: str,
        items: tuple[str, ...],
        depth: int,
        done: bool,
        opened: dict[str, str],
        row: dict[str, Any],
        rows: list[dict[str, Any]],
    ) -> None:
        counts, total = self.item_counts(name), len(self.items.get(name, ()))
        row["items"] = {"total": total, "counts": counts}
        noun = "iteration" if node["kind"] == "loop" else "item"
        row["summary"] = f"{total} {noun}{'' if total == 1 else 's'}: " + ", ".join(
            f"{counts[s]} {s}" for s in STATES if counts.get(s)
        )
        chosen = opened.get(name)
        if chosen is None or chosen not in self.items.get(name, {}):
            chosen = self._default_item(name, last=node["kind"] == "loop")
        if chosen is None:
            return
        branch = node["branches"][0]
        instance = fill(branch["name"], (*items, chosen))
        state = self.item_state(instance)
        rows.append(_branch_row(instance, f"{noun} {chosen}", depth + 1, state, node["kind"], name))
        ended = done or instance in self.branch_end
        self._walk(branch["steps"], (*items, chosen), depth + 2, ended, opened, rows)

    def _default_item(self, composite: str, last: bool) -> str | None:
        """The item worth showing first: the first to fail, else a running one, else the
        first (the latest iteration, for a loop)."""
        for kept in (self._failed_items, self._running_items):
            found = next(iter(kept.get(composite, ())), None)
            if found is not None:
                return found
        items = list(self.items.get(composite, ()))
        return (items[-1] if last else items[0]) if items else None

    def _row(
        self, name: str, step: StepState | None, depth: int, node: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        kind = node["kind"] if node else step.kind if step else "task"
        start, end = (step.start, step.end) if step else (self._since.get(name), None)
        running = step.state in (RUNNING, RETRYING) if step else start is not None
        duration = (end or time.time()) - start if start and (end or running) else None
        return {
            "name": name,
            "label": node["label"] if node else step.label if step else name,
            "depth": depth,
            "kind": kind,
            "state": step.state if step else WAITING,
            "attempts": step.attempts if step else 0,
            "started": _iso(start),
            "duration": duration,
            "message": step.message if step else "",
            "log": f"{self.catalog}/logs/{name}.execution.log"
            if kind == "task" and step and self.catalog
            else "",
            "summary": "",
        }


def _branch_row(
    instance: str, label: str, depth: int, state: str, of_kind: str, composite: str
) -> dict[str, Any]:
    return {
        "name": instance,
        "label": label,
        "depth": depth,
        "kind": "branch",
        "state": state,
        "attempts": 0,
        "started": None,
        "duration": None,
        "message": "",
        "log": "",
        "summary": "",
        "composite": composite,
        "of": of_kind,
    }


def _iso(stamp: float | None) -> str | None:
    return datetime.fromtimestamp(stamp).astimezone().isoformat() if stamp else None


class Runs:
    """Every run this scheduler has heard of, the newest kept (:data:`MAX_RUNS`)."""

    def __init__(self) -> None:
        self.runs: dict[str, RunState] = {}

    def run(self, run_id: str) -> RunState:
        found = self.runs.get(run_id)
        if found is None:
            found = self.runs[run_id] = RunState(run_id)
            self._forget_old()
        return found

    def announced(self, message: dict[str, Any]) -> None:
        """A message of the driving process (see runnable_dask.announce)."""
        run = self.run(str(message["run_id"]))
        if message.get("op") == "plan":
            run.planned(message)
        elif message.get("op") == "expand":
            run.expanded(message["template"], tuple(message["items"]), list(message["values"]))

    def client_left(self, client: str) -> None:
        for run in self.runs.values():
            if run.client == client:
                run.stopped()

    def ordered(self) -> list[RunState]:
        """Running runs first, then the rest; newest first within each."""
        return sorted(self.runs.values(), key=lambda r: (r.status != RUNNING, -r.started))

    def _forget_old(self) -> None:
        if len(self.runs) <= MAX_RUNS:
            return
        finished = [r for r in self.ordered() if r.status != RUNNING]
        for run in finished[::-1][: len(self.runs) - MAX_RUNS]:
            del self.runs[run.run_id]
