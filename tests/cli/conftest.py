"""CLI fixtures: a pipeline file in the test's folder, and the CLI invoked as a user would.

``flow.py`` holds the pipelines the tests run: ``main()`` runs ``passing`` itself (the
plain ``FILE.py`` form); the other functions return a Pipeline (``FILE.py:function``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from runnable_dask.cli import cli
from runnable_dask.stores.runlog import RunLog
from runnable_dask.stores.runlog_store import RunLogStore

FLOW = '''
import json
import os
from pathlib import Path

from runnable_dask import Parallel, Pipeline, PythonTask, Stub


def ok():
    print("hello from ok")
    return 1


def boom():
    raise ValueError("boom: bad input")


def scaled(alpha: float):
    return alpha * 2


def flaky():
    """Fails until the file 'fixed' exists: a run that a retry can complete."""
    if not Path("fixed").exists():
        raise RuntimeError("not fixed yet")


def passing():
    return Pipeline(
        steps=[PythonTask(name="first", function=ok, returns=["x"]), Stub(name="second")]
    )


def failing():
    branch_a = Pipeline(steps=[Stub(name="quiet")])
    branch_b = Pipeline(steps=[PythonTask(name="fails", function=boom)])
    return Pipeline(
        steps=[
            PythonTask(name="first", function=ok),
            Parallel(name="fan", branches={"a": branch_a, "b": branch_b}),
            Stub(name="after"),
        ]
    )


def with_parameter():
    return Pipeline(steps=[PythonTask(name="scale", function=scaled, returns=["scaled"])])


def retryable():
    return Pipeline(steps=[Stub(name="before"), PythonTask(name="flaky", function=flaky)])


def spy():
    """Records what a launched function sees, then returns a pipeline."""
    seen = {name: value for name, value in os.environ.items() if name.startswith("RUNNABLE")}
    seen["cwd"] = os.getcwd()
    Path("seen.json").write_text(json.dumps(seen))
    return passing()


def not_a_pipeline():
    return 3


def main():
    spy().execute()
'''


@pytest.fixture
def flow(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``flow.py`` in the test's folder; sys.path and sys.modules restored afterwards."""
    path = workdir / "flow.py"
    path.write_text(FLOW, encoding="utf-8")
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield path
    sys.modules.pop("flow", None)


@pytest.fixture
def invoke() -> Callable[..., Result]:
    """Run ``runnable-dask ARGS`` in this process; stdout and stderr kept apart."""

    def _invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), prog_name="runnable-dask")

    return _invoke


@pytest.fixture
def store(workdir: Path) -> RunLogStore:
    return RunLogStore(workdir / ".run_log_store")


@pytest.fixture
def write_run_log(store: RunLogStore) -> Callable[..., RunLog]:
    """Store a run log as the driver would, for states a quick real run cannot reach."""

    def _write(run_id: str, steps: dict[str, Any], **fields: Any) -> RunLog:
        run_log = RunLog.model_validate({"run_id": run_id, "steps": steps, **fields})
        store.create(run_log)
        return run_log

    return _write
