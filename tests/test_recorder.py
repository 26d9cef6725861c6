"""The recorder batches run-log writes, so a long run does not rewrite its log per step."""

from __future__ import annotations

import io
import time
from pathlib import Path

from rich.console import Console

from runnable_dask import Pipeline, PythonTask
from runnable_dask.console import RunConsole
from runnable_dask.log_writer import LogWriter
from runnable_dask.plan import build_plan
from runnable_dask.plan_shape import PlanShape
from runnable_dask.recorder import RunRecorder
from runnable_dask.runtime.events import StepEnded, StepStarted
from runnable_dask.step_progress import StepProgress
from runnable_dask.stores.runlog import RunLog
from runnable_dask.stores.runlog_store import RunLogStore

STEPS = 3000


def noop() -> None:
    return None


class CountingStore(RunLogStore):
    """The real file store, counting its writes."""

    writes = 0

    def write(self, run_log: RunLog) -> None:
        self.writes += 1
        super().write(run_log)


def test_writes_are_batched_and_the_last_one_holds_every_step(tmp_path: Path) -> None:
    pipeline = Pipeline(steps=[PythonTask(name=f"s{i}", function=noop) for i in range(STEPS)])
    store = CountingStore(tmp_path)
    run_log = RunLog(run_id="batched", status="PROCESSING")
    store.create(run_log)
    quiet = RunConsole(Console(file=io.StringIO()))
    plan = build_plan(pipeline)
    shape = PlanShape.of(plan)
    writer = LogWriter(run_log, store, min_interval=0.25)
    recorder = RunRecorder(run_log, shape, StepProgress(quiet, plan, shape), writer)

    began = time.monotonic()
    for i in range(STEPS):
        name = f"s{i}"
        recorder.apply(StepStarted(name, name, (), name, "task", ""))
        recorder.apply(StepEnded(name, name, (), name, "task", "SUCCESS"))
    elapsed = time.monotonic() - began
    recorder.close()

    assert store.writes <= 2 + elapsed / 0.25, (store.writes, elapsed)
    stored = store.read("batched")
    assert len(stored.steps) == STEPS
    assert all(step.status == "SUCCESS" for step in stored.steps.values())
