"""Recording and reading a big map's run log, without a cluster: what the driver does
with the events of N map items, and how quickly ``show`` and ``runs`` read the result.

``python -m benchmarks.records record N FOLDER``: the driver's recorder and run-log store
take the events a map of N items sends (each item's step and branch end, as tasks send
them), in a process of its own; prints one JSON line: ``record_seconds`` (CPU time of
the driving process, writes included), ``write_seconds`` (``RunLogStore.write``),
``writes``, ``rss_growth_mb`` (``VmRSS`` after against before) and the ``run_id``.
:func:`measure` adds ``runnable-dask show`` of that run and ``runnable-dask runs`` over
2,000 stored runs, each as a user runs it (a fresh process, imports included).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks.map_child import _rss_mb, _time_writes
from benchmarks.processes import ROOT, clean_env
from benchmarks.report import Row, seconds
from benchmarks.workloads import Workload
from runnable_dask.console import RunConsole
from runnable_dask.log_writer import LogWriter
from runnable_dask.plan import build_plan
from runnable_dask.plan_shape import PlanShape
from runnable_dask.recorder import RunRecorder
from runnable_dask.runtime.events import BranchEnded, RunEnded, StepEnded
from runnable_dask.step_progress import StepProgress
from runnable_dask.stores.runlog import RunLog
from runnable_dask.stores.runlog_store import RunLogStore
from runnable_dask.timestamps import now

STORED_RUNS = 2000
FAILING = 0.777
"""Where in the map the item that fails is, so that ``show`` has a failure to list: late,
since listing it must not read the items before it (with item 42 failing, ``show`` never
met the 1.3 s a map of 100,000 spent reading 77,000 items to find item 77,777)."""


def _value(value: Any) -> dict[str, Any]:
    return {"kind": "json", "value": value, "description": ""}


def _attempt(inputs: dict[str, Any], outputs: dict[str, Any], failed: bool) -> dict[str, Any]:
    stamp = now()
    return {
        "attempt_number": 1,
        "start_time": stamp,
        "end_time": stamp,
        "status": "FAIL" if failed else "SUCCESS",
        "message": "ValueError: broken" if failed else "",
        "input_parameters": {name: _value(v) for name, v in inputs.items()},
        "output_parameters": {name: _value(v) for name, v in outputs.items()},
        "user_defined_metrics": {},
        "retry_indicator": "",
        "code_identities": [],
    }


def record(n: int, folder: Path) -> dict[str, Any]:
    """The map workload's events for N items through the recorder and the store."""
    plan = build_plan(Workload("map", n).pipeline(__import__("runnable_dask")))
    store = RunLogStore(folder)
    run_log = RunLog(run_id=f"map-{n}", status="PROCESSING")
    store.create(run_log)
    shape = PlanShape.of(plan)
    quiet = RunConsole(Console(file=io.StringIO()))
    writer = LogWriter(run_log, store)
    recorder = RunRecorder(run_log, shape, StepProgress(quiet, plan, shape), writer)
    writes = _time_writes()
    before = _rss_mb("VmRSS")
    began = time.process_time()
    items = tuple(str(i) for i in range(n))
    failing = int(n * FAILING)
    recorder.expand_map("sweep", (), items)
    for item in items:
        failed = int(item) == failing
        ran = _attempt({"n": n, "x": int(item)}, {"y": int(item) + 1}, failed)
        status = "FAIL" if failed else "SUCCESS"
        where = (f"sweep.{item}.inc", "sweep.%.inc", (item,), "inc", "task")
        recorder.apply(StepEnded(*where, status, ran["message"], [ran]))
        end = "fail" if failed else "success"
        reached = [_attempt({"n": n, "x": int(item)}, {}, False)]
        terminal = StepEnded(f"sweep.{item}.{end}", f"sweep.%.{end}", (item,), end, end, "SUCCESS")
        terminal.attempts.extend(reached)
        parameters = {"y": _value(int(item) + 1)}
        recorder.apply(
            BranchEnded(terminal, f"sweep.{item}", "sweep.%", (item,), status, parameters)
        )
    recorder.apply(StepEnded("sweep", "sweep", (), "sweep", "map", "FAIL", "1 item failed"))
    recorder.apply(RunEnded(StepEnded("fail", "fail", (), "fail", "fail", "SUCCESS"), "FAIL", {}))
    recorder.close()
    return {
        "record_seconds": time.process_time() - began,
        "write_seconds": sum(writes),
        "writes": len(writes),
        "rss_growth_mb": _rss_mb("VmRSS") - before,
        "run_id": run_log.run_id,
    }


def _command_seconds(arguments: list[str], folder: Path) -> float:
    """A ``runnable-dask`` command as a user runs it: a fresh process, imports included."""
    command = [str(Path(sys.executable).parent / "runnable-dask"), *arguments]
    command += ["--log-folder", str(folder)]
    began = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - began


def _imports_seconds() -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import runnable_dask.cli"], check=True, timeout=600)
    return time.perf_counter() - began


def measure(n: int, scratch: Path, repeat: int) -> list[Row]:
    """Rows: recording N items (driver CPU, writes, memory), then show and runs."""
    folder = scratch / f"records-{n}"
    child = [sys.executable, "-m", "benchmarks.records", "record", str(n), str(folder)]
    environment = clean_env(PYTHONPATH=str(ROOT))  # the bench runs in a scratch folder
    done = subprocess.run(
        child, check=False, capture_output=True, text=True, timeout=3600, env=environment
    )
    if done.returncode:
        raise RuntimeError(f"recording {n:,} items failed:\n{done.stderr}")
    recorded = json.loads(done.stdout.strip().splitlines()[-1])
    label = f"map {n:,} items, recorded"
    rows = [
        Row(f"{label}: driver CPU", "no cluster", seconds(recorded["record_seconds"])),
        Row(
            f"{label}: run-log writing",
            "no cluster",
            f"{seconds(recorded['write_seconds'])} ({recorded['writes']} writes)",
        ),
        Row(f"{label}: driver memory growth", "no cluster", f"{recorded['rss_growth_mb']:.0f} MB"),
    ]
    imports = min(_imports_seconds() for _ in range(repeat))
    show = min(_command_seconds(["show", recorded["run_id"]], folder) for _ in range(repeat))
    shown = f"{seconds(show)} (imports alone: {seconds(imports)})"
    rows.append(Row(f"runnable-dask show, map of {n:,}", "", shown))
    many = scratch / "many-runs"
    _store_runs(many, STORED_RUNS)
    listed = min(_command_seconds(["runs"], many) for _ in range(repeat))
    rows.append(Row(f"runnable-dask runs, {STORED_RUNS:,} stored", "", seconds(listed)))
    shutil.rmtree(folder, ignore_errors=True)
    return rows


def _store_runs(folder: Path, count: int) -> None:
    """``count`` small finished runs, as a store holds them after a season of use."""
    store = RunLogStore(folder)
    for index in range(count):
        stamp = now()
        run_log = RunLog.model_validate(
            {
                "run_id": f"run-{index:05d}",
                "status": "SUCCESS",
                "steps": {
                    "work": {
                        "name": "work",
                        "internal_name": "work",
                        "status": "SUCCESS",
                        "attempts": [{"start_time": stamp, "end_time": stamp, "status": "SUCCESS"}],
                    }
                },
            }
        )
        store.create(run_log)


def main() -> None:
    command, n, folder = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    if command != "record":
        raise SystemExit(f"unknown command {command!r}: only 'record'")
    print(json.dumps(record(n, folder)))


if __name__ == "__main__":
    main()
