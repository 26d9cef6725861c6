"""What a run imports before it needs it: a run on a running cluster neither renders a
dashboard nor runs a notebook in the driving process, so bokeh and papermill stay out;
nor does it draw a progress bar in a log, or build the models of steps it does not have."""

from __future__ import annotations

import os
import subprocess
import sys

import runnable_dask.dashboard
from runnable_dask.executors import standing

# Each costs 0.3-1.5 s of a run's start on a 2-core machine (python -X importtime);
# rich.progress 10 ms, for the bars of a terminal that shows a map or a wide Parallel.
NOT_AT_START = (
    "bokeh",
    "papermill",
    "nbformat",
    "nbclient",
    "distributed.dashboard",
    "rich.progress",
)


def test_a_run_on_a_running_cluster_imports_no_dashboard_and_no_notebook_runner() -> None:
    code = (
        "import sys, runnable_dask, runnable_dask.driver, runnable_dask.executors.dask, "
        "runnable_dask.executors.cluster\n"
        f"print(' '.join(m for m in {NOT_AT_START!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == ""


def test_a_run_builds_the_models_of_what_it_has_and_names_only() -> None:
    code = (
        "from runnable_dask import Conditional, Loop, Map, Pipeline, Stub\n"
        "from runnable_dask.config import LocalConfig, MockedConfig, load_configuration\n"
        "from runnable_dask.sdk.steps import BaseTask\n"
        "Pipeline(steps=[Stub(name='only')])\n"
        "load_configuration('')\n"
        "unused = (Conditional, Loop, Map, LocalConfig, MockedConfig, BaseTask)\n"
        "print(' '.join(m.__name__ for m in unused if m.__pydantic_complete__))\n"
        "print(Stub.__pydantic_complete__, Pipeline.__pydantic_complete__)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=env,
    )
    assert done.stdout.splitlines() == ["", "True True"]


def test_the_preload_named_by_the_cluster_code_is_the_dashboard_module() -> None:
    assert standing.PIPELINE_PAGE == runnable_dask.dashboard.PRELOAD


def test_the_exit_of_a_process_that_imported_runnable_dask_skips_the_last_collection() -> None:
    # Registered before the import, this handler runs after runnable_dask's.
    code = (
        "import atexit, gc\n"
        "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0))\n"
        "import runnable_dask\n"
        "print('frozen before exit:', gc.get_freeze_count() > 0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.splitlines() == ["frozen before exit: False", "frozen at exit: True"]
