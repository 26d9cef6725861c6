"""A hello-world notebook step: on a worker with a warm kernel, against a cold start.

Three runs of the same one-cell notebook, taken in turn on one running cluster:

- ``warm``: runnable_dask as a user runs it; the worker had time to ready a kernel (the
  pause between runs is not timed);
- ``cold``: runnable_dask with the kernel started for the step, as before warm kernels
  (a ``kernel_manager_class`` in ``optional_ploomber_args`` makes papermill start it);
- ``bare``: a Dask task that calls ``papermill.execute_notebook``, as one would on bare
  Dask (a kernel started per call).

``execute()`` includes connecting to the cluster and the run log; the step's own time
(its attempt in the run log) is what the warm kernel changes.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks import runs
from runnable_dask import NotebookTask, Pipeline
from runnable_dask.stores.runlog import RunLog

NOTEBOOK = "hello.ipynb"
PAUSE = 2.0  # seconds between runs: time for the worker to ready the next kernel
COLD = {
    "kernel_manager_class": "jupyter_client.manager.AsyncKernelManager",
    "extra_arguments": ["--IPKernelApp.log_level=ERROR"],
}


def write_notebook(folder: Path) -> None:
    """``print("Hello World!")`` in one cell, for the python3 kernel."""
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "hello",
                "metadata": {},
                "outputs": [],
                "source": ['print("Hello World!")'],
            }
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (folder / NOTEBOOK).write_text(json.dumps(notebook), encoding="utf-8")


def pipeline(cold: bool) -> Pipeline:
    return Pipeline(
        steps=[
            NotebookTask(
                name="hello", notebook=NOTEBOOK, optional_ploomber_args=COLD if cold else {}
            )
        ]
    )


def papermill_task(source: str) -> None:
    """The bare side: a notebook run by papermill in a Dask task."""
    import papermill

    with tempfile.TemporaryDirectory() as folder:
        papermill.execute_notebook(
            source,
            os.path.join(folder, "out.ipynb"),
            progress_bar=False,
            extra_arguments=COLD["extra_arguments"],  # quiet, as on our side
        )


def step_seconds(run_log: RunLog) -> float:
    attempt = run_log.steps["hello"].attempts[0]
    return (
        datetime.fromisoformat(attempt.end_time) - datetime.fromisoformat(attempt.start_time)
    ).total_seconds()


def measure(client: Any, config: Path, folder: Path, repeat: int) -> dict[str, float]:
    """Best seconds of each side's run and of each runnable_dask step, taken in turn."""
    write_notebook(folder)
    source = str(folder / NOTEBOOK)
    warm, cold = pipeline(cold=False), pipeline(cold=True)
    runs.run_ours(warm, config)  # untimed: registers the kernels, imports on the workers
    runs.run_ours(cold, config)
    client.submit(papermill_task, source, pure=False).result()
    best = dict.fromkeys(("warm", "warm step", "cold", "cold step", "bare"), float("inf"))
    for _ in range(repeat):
        for side, built in (("warm", warm), ("cold", cold)):
            time.sleep(PAUSE)  # each side on a quiet worker
            began = time.perf_counter()
            run_log = runs.run_ours(built, config)
            best[side] = min(best[side], time.perf_counter() - began)
            best[f"{side} step"] = min(best[f"{side} step"], step_seconds(run_log))
        time.sleep(PAUSE)
        began = time.perf_counter()
        client.submit(papermill_task, source, key=f"hello-{uuid.uuid4().hex}").result()
        best["bare"] = min(best["bare"], time.perf_counter() - began)
    return best
