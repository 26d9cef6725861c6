"""``runnable-dask cluster start --resources "GPU=1"``: the workers offer it, ``status``
shows it, and a step with ``resources={"GPU": 1}`` runs there, one at a time per GPU.

A real cluster started with the command a user types, in a state file of the test's own.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from runnable_dask import Parallel, Pipeline, PythonTask
from runnable_dask.executors import standing

from .test_standing_cluster import cli, end

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]


STEPS = """
import os
import time


def on_the_gpu():
    began = time.time()
    time.sleep(1.0)
    return os.getpid(), began, time.time()
"""


def gpu_step(folder: Path) -> PythonTask:
    """A step asking for a GPU, from a module of the project (``folder``): the workers of
    a cluster started elsewhere get its code by value, as a user's."""
    path = folder / "gpu_steps.py"
    path.write_text(STEPS, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("gpu_steps", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["gpu_steps"] = module
    return PythonTask(
        name="fit", function=module.on_the_gpu, returns=["where"], resources={"GPU": 1}
    )


def test_a_cluster_started_with_resources_runs_the_steps_that_ask_for_them(
    tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state_file = tmp_path / "cluster.json"
    state = None
    try:
        started = cli(
            state_file,
            *("start", "--workers", "1", "--threads", "2"),
            *("--dashboard-address", "127.0.0.1:0", "--resources", "GPU=1"),
        ).stdout
        state = standing.read(state_file)
        assert state is not None and state.resources == {"GPU": 1.0}
        assert "Resources: GPU=1 on each worker" in started
        shown = cli(state_file, "status").stdout
        assert re.search(r"┃ resources +┃", shown)  # a column of its own
        assert re.search(r"│ worker\S* +│ tcp://127\.0\.0\.1:\d+ +│ +2 │ .+│ GPU=1 +│", shown)

        monkeypatch.setenv(standing.STATE_ENV, str(state_file))
        monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
        gpu = Pipeline(steps=[gpu_step(workdir)])
        run_log = Pipeline(steps=[Parallel(name="both", branches={"a": gpu, "b": gpu})]).execute()

        times = []
        for branch in ("a", "b"):
            pid, began, ended = (
                run_log.step(f"both.{branch}.fit").attempts[-1].output_parameters["where"].value
            )
            assert pid in {p.pid for p in standing.processes(state)}  # on the cluster's worker
            times.append((began, ended))
        # The worker offers one GPU and has two threads: the two steps never overlapped.
        (_, first_end), (second_start, _) = sorted(times)
        assert first_end <= second_start
    finally:
        end(state_file, state)


def test_a_bad_resources_value_is_refused_before_anything_starts(tmp_path: Path) -> None:
    state_file = tmp_path / "cluster.json"
    done = cli(state_file, "start", "--resources", "GPU", check=False)
    assert done.returncode == 2
    assert "--resources: 'GPU' is not NAME=AMOUNT" in done.stderr
    assert "GPU=1,MEMORY=8e9" in done.stderr
    assert not state_file.exists()
