"""Shared fixtures: a private working folder, a `local` configuration, a `run` helper and
a few named pipelines the tests reuse.

Pipelines run with the ``local`` executor (Dask's threaded scheduler in this process), so
step functions may be closures and may share ``threading`` objects with the test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runnable_dask import Parallel, Pipeline, PythonTask, Stub
from runnable_dask.stores import packed
from runnable_dask.stores.runlog import BranchLog, RunLog
from runnable_dask.stores.runlog_store import RunLogStore

RUN_ID = "test-run"


def pytest_configure(config: pytest.Config) -> None:
    """Runs in the tests, and in the processes they start, find no cluster of the user's:
    no ``DASK_SCHEDULER_ADDRESS``, and no ``runnable-dask cluster`` (its state file's
    default folder, under ``XDG_RUNTIME_DIR``, is one of the session's own). Tests that
    want a cluster start their own."""
    os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="runnable-dask-tests-")
    for name in ("DASK_SCHEDULER_ADDRESS", "RUNNABLE_DASK_CLUSTER_FILE"):
        os.environ.pop(name, None)
    # A suite started in the background by a non-interactive shell (``cmd &``) has SIGINT
    # ignored, and the processes it starts inherit that: the tests that interrupt a run
    # with SIGINT then waited for a run that never heard it (seven failed so). Handled
    # here, SIGINT is back to its default in every process the tests start.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(os.environ["XDG_RUNTIME_DIR"], ignore_errors=True)


@pytest.fixture
def items_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the packed map items read back into objects from now on: what the
    summaries of a big map must not do for every item."""
    read: list[str] = []
    unpack = packed._branch

    def recording(data: bytes) -> BranchLog:
        branch = unpack(data)
        read.append(branch.internal_name)
        return branch

    monkeypatch.setattr(packed, "_branch", recording)
    return read


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh folder the test runs in, with no RUNNABLE_* variable inherited."""
    for name in list(os.environ):
        if name.startswith("RUNNABLE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def local_config(workdir: Path) -> Path:
    """A configuration file choosing the in-process ``local`` executor."""
    path = workdir / "local.yaml"
    path.write_text("pipeline-executor:\n  type: local\n", encoding="utf-8")
    return path


Run = Callable[..., RunLog]


@pytest.fixture
def run(local_config: Path) -> Run:
    """Execute a pipeline with the local configuration and the run id ``test-run``."""

    def _run(pipeline: Pipeline, run_id: str = RUN_ID, **kwargs: Any) -> RunLog:
        return pipeline.execute(configuration_file=str(local_config), run_id=run_id, **kwargs)

    return _run


@pytest.fixture
def stored_run_log(workdir: Path) -> Callable[[str], RunLog]:
    """Read a run log back from ``.run_log_store`` (what a user opens after a run)."""

    def _read(run_id: str = RUN_ID) -> RunLog:
        return RunLogStore(workdir / ".run_log_store").read(run_id)

    return _read


@pytest.fixture
def raw_run_log(workdir: Path) -> Callable[[str], dict[str, Any]]:
    """The run log file as plain JSON, as any other tool would read it."""

    def _read(run_id: str = RUN_ID) -> dict[str, Any]:
        path = workdir / ".run_log_store" / f"{run_id}.json"
        return json.loads(path.read_text(encoding="utf-8"))

    return _read


@pytest.fixture
def step_log(workdir: Path) -> Callable[..., str]:
    """The captured output of one step, as stored in the run's catalog."""

    def _read(internal_name: str, run_id: str = RUN_ID) -> str:
        path = workdir / ".catalog" / run_id / "logs" / f"{internal_name}.execution.log"
        return path.read_text(encoding="utf-8")

    return _read


# --- named pipelines -------------------------------------------------------------------


def _split() -> int:
    return 10


def _scale(base: int, factor: int) -> int:
    return base * factor


def _join(a_out: int, b_out: int, c_out: int) -> int:
    return a_out + b_out + c_out


@pytest.fixture
def linear() -> Pipeline:
    """``first -> second -> third``: each adds one to ``count``."""

    def first() -> int:
        return 1

    def second(count: int) -> int:
        return count + 1

    def third(count: int) -> int:
        return count + 1

    return Pipeline(
        steps=[
            PythonTask(name="first", function=first, returns=["count"]),
            PythonTask(name="second", function=second, returns=["count"]),
            PythonTask(name="third", function=third, returns=["count"]),
        ]
    )


@pytest.fixture
def fan_out_fan_in() -> Pipeline:
    """``split`` returns ``base``; three branches scale it; ``join`` adds their outputs."""

    def branch(key: str, factor: int) -> Pipeline:
        def scale(base: int) -> int:
            return _scale(base, factor)

        return Pipeline(steps=[PythonTask(name="scale", function=scale, returns=[f"{key}_out"])])

    return Pipeline(
        steps=[
            PythonTask(name="split", function=_split, returns=["base"]),
            Parallel(
                name="fan",
                branches={"a": branch("a", 1), "b": branch("b", 2), "c": branch("c", 3)},
            ),
            PythonTask(name="join", function=_join, returns=["total"]),
        ]
    )


@pytest.fixture
def stubs_only() -> Pipeline:
    """Two stubs: the smallest pipeline that runs."""
    return Pipeline(steps=[Stub(name="one"), Stub(name="two")])
