"""The model sweep runs unchanged on a running cluster, chosen by configuration alone;
run again, its fits come from the step cache.

A small grid, set through the environment, keeps it quick; the default grid runs once
on the default LocalCluster in tests/test_examples.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import DASK, ROOT, DaskProcesses, start, wait_for_workers

pytestmark = pytest.mark.cluster


def test_sweep_runs_on_dask_scheduler_and_workers(
    tcp_cluster: DaskProcesses, tmp_path: Path
) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
    environ["RUNNABLE_CONFIGURATION_FILE"] = str(tcp_cluster.config(tmp_path))
    environ["RUNNABLE_RUN_ID"] = "sweep-on-a-cluster"
    environ["RUNNABLE_PRM_cv_folds"] = "3"
    environ["RUNNABLE_PRM_grids"] = json.dumps(
        {
            "logistic_regression": {"C": [0.1, 1.0]},
            "random_forest": {"n_estimators": [20, 50]},
            "gradient_boosting": {"n_estimators": [20], "max_depth": [2, 3]},
        }
    )
    had_report = (ROOT / "report").exists()
    # The random forest's fits ask for MEMORY (examples/ml_sweep/sweep.py): one more
    # worker offers it, as the example's docstring says to start one.
    command = [DASK, "worker", tcp_cluster.address, "--host", "127.0.0.1", "--no-dashboard"]
    command += ["--nthreads", "2", "--resources", "MEMORY=8e9"]
    log = tcp_cluster.worker_folder.parent / "memory-worker.log"
    tcp_cluster.processes.append(start(command, tcp_cluster.worker_folder, log))
    wait_for_workers(tcp_cluster, 3)

    def sweep(run_id: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "examples/ml_sweep/sweep.py"],
            cwd=ROOT,
            env={**environ, "RUNNABLE_RUN_ID": run_id},
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )

    process = sweep("sweep-on-a-cluster")
    again = sweep("sweep-again")

    output = f"{process.stdout}\n{process.stderr}"
    assert process.returncode == 0, output
    assert tcp_cluster.address in process.stdout
    run_log = json.loads((tmp_path / "run_logs" / "sweep-on-a-cluster.json").read_text())
    assert run_log["status"] == "SUCCESS"
    fits = [
        branch["steps"][f"{key}.fit"]
        for family in run_log["steps"]["sweep"]["branches"].values()
        for key, branch in family["steps"][f"{family['internal_name']}.grid"]["branches"].items()
    ]
    assert len(fits) == 6  # every configuration of the grid
    assert all(len(fit["attempts"][-1]["user_defined_metrics"]) == 1 for fit in fits)
    report = tmp_path / "catalog" / "sweep-on-a-cluster" / "report"
    assert sorted(p.name for p in report.iterdir()) == ["summary.md", "sweep-scores.png"]
    # The report was written in the workers' own folder, not the driver's.
    assert (tcp_cluster.worker_folder / "report" / "summary.md").exists()
    assert had_report or not (ROOT / "report").exists()
    # Run again: every fit comes from the cache the first run left beside the catalog.
    assert again.returncode == 0, f"{again.stdout}\n{again.stderr}"
    assert "6 of 6 fits came from the step cache" in again.stdout
    cached = json.loads((tmp_path / "run_logs" / "sweep-again.json").read_text())
    assert cached["parameters"]["winner"] == run_log["parameters"]["winner"]
    report = tmp_path / "catalog" / "sweep-again" / "report"
    assert sorted(p.name for p in report.iterdir()) == ["summary.md", "sweep-scores.png"]
