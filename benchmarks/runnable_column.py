"""The runnable 0.50.0 column: each workload, and the seed, run by runnable in its own
interpreter (``--runnable-python``), one process per run, under a time limit.

runnable runs branches one after another unless its ``local`` executor is given
``enable_parallel: true`` (which also needs the ``chunked-fs`` run-log store; branches
then run in a ``multiprocessing`` pool). The column asks for that mode; where it fails
(a Parallel inside a Parallel: "daemonic processes are not allowed to have children"),
the run is repeated in runnable's default mode and the cell says so. runnable spends
30-60 ms a step, so its largest workloads run at a smaller size, also said in the cell.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from benchmarks.processes import ROOT, clean_env, copy_examples
from benchmarks.timing import Finished, run_process
from benchmarks.workloads import Workload

PARALLEL = {
    "pipeline-executor": {"type": "local", "config": {"enable_parallel": True}},
    "run-log-store": {"type": "chunked-fs"},
}
LARGEST = {"chain": 200, "wide": 200, "map": 1000}  # the sizes runnable runs at most here
SEED = "examples/06-parallel/parallel.py"


@dataclass(frozen=True)
class Outcome:
    """One runnable run: its seconds, or why there are none."""

    seconds: float | None
    problem: str = ""

    def cell(self, note: str = "") -> str:
        text = f"{self.seconds:.3f} s" if self.seconds is not None else self.problem
        return f"{text} {note}".strip()


class RunnableColumn:
    """Runs workloads with runnable 0.50.0 from a scratch folder of its own."""

    def __init__(self, python: str, timeout: float, scratch: Path) -> None:
        self.python, self.timeout = python, timeout
        self.folder = scratch / "runnable"
        package = self.folder / "benchmarks"
        package.mkdir(parents=True)
        for name in ("__init__.py", "workloads.py", "runnable_child.py"):
            shutil.copy(ROOT / "benchmarks" / name, package)
        self.parallel_config = self.folder / "parallel.yaml"
        self.parallel_config.write_text(yaml.safe_dump(PARALLEL), encoding="utf-8")
        self.examples = copy_examples(scratch / "runnable-examples", "runnable")

    def size(self, workload: Workload) -> Workload:
        """The workload at the size runnable runs it."""
        return Workload(workload.kind, min(workload.n, LARGEST.get(workload.kind, workload.n)))

    def workload(self, workload: Workload) -> str:
        """The cell for ``workload``: seconds of ``execute()``, the mode and size if not
        the asked ones, ``> T s`` past the time limit, or ``failed``."""
        sized = self.size(workload)
        size_note = f"(N={sized.n})" if sized.n != workload.n else ""
        parameters = ""
        if sized.parameters:
            path = self.folder / f"parameters-{sized.kind}-{sized.n}.yaml"
            path.write_text(yaml.safe_dump(sized.parameters), encoding="utf-8")
            parameters = str(path)
        env = {"BENCH_KIND": sized.kind, "BENCH_N": str(sized.n), "BENCH_PARAMETERS": parameters}
        parallel = self._child(env, self.parallel_config)
        if parallel.seconds is not None or parallel.problem.startswith(">"):
            return parallel.cell(size_note)
        in_turn = self._child(env, None)
        return in_turn.cell(f"{size_note} (branches in turn: its parallel mode failed)".strip())

    def seed(self, parallel: bool) -> Outcome:
        """The seed's parallel example as a process, end to end."""
        config = {"RUNNABLE_CONFIGURATION_FILE": str(self.parallel_config)} if parallel else {}
        env = clean_env(PYTHONPATH=str(self.examples), RUNNABLE_RUN_ID=_run_id(), **config)
        done = run_process([self.python, SEED], self.examples, env, self.timeout)
        return self._outcome(done, lambda finished: finished.seconds)

    def _child(self, extra: dict[str, str], config: Path | None) -> Outcome:
        env = clean_env(PYTHONPATH=str(self.folder), RUNNABLE_RUN_ID=_run_id(), **extra)
        if config is not None:
            env["RUNNABLE_CONFIGURATION_FILE"] = str(config)
        command = [self.python, "benchmarks/runnable_child.py"]
        done = run_process(command, self.folder, env, self.timeout)
        return self._outcome(
            done, lambda finished: json.loads(finished.stdout.strip().splitlines()[-1])["seconds"]
        )

    def _outcome(self, done: Finished | None, seconds_of: Callable[[Finished], float]) -> Outcome:
        if done is None:
            return Outcome(None, f"> {self.timeout:.0f} s")
        if done.returncode != 0:
            return Outcome(None, "failed")
        return Outcome(seconds_of(done))


def _run_id() -> str:
    return f"bench-{uuid.uuid4().hex[:12]}"
