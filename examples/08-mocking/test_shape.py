"""Unit tests of the shape of examples/08-mocking/train_and_publish.py, in mocked runs.

Each test builds the pipeline with ``build()`` (which does not run it) and executes it
with a mocked configuration, so nothing real happens: no data is written, nothing is
published, and the tests take well under a second. Copy the pattern for your pipelines.

Run it from the repository root:

    python -m pytest examples/08-mocking/test_shape.py

Outcome: 2 tests pass. (runnable_dask only: runnable's ``execute()`` returns None, not
the run log.)
"""

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from train_and_publish import build  # pytest puts this test's folder on sys.path

STEPS = ["download data", "train", "evaluate", "publish", "success"]


@pytest.fixture
def run_id(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh run id; its run log and catalog are removed afterwards."""
    monkeypatch.delenv("RUNNABLE_CONFIGURATION_FILE", raising=False)  # it would win
    run_id = f"shape-{uuid.uuid4().hex[:8]}"
    yield run_id
    Path(".run_log_store", f"{run_id}.json").unlink(missing_ok=True)
    shutil.rmtree(Path(".catalog", run_id), ignore_errors=True)


def test_every_step_is_reached_in_order(run_id: str) -> None:
    run_log = build().execute(configuration_file="examples/configs/mocked.yaml", run_id=run_id)
    assert run_log.status == "SUCCESS"
    assert list(run_log.steps) == STEPS
    assert {step.status for step in run_log.steps.values()} == {"SUCCESS"}
    assert run_log.parameters == {}  # no task ran, so nothing was returned


def test_the_forecast_reaches_evaluate(run_id: str) -> None:
    run_log = build().execute(
        configuration_file="examples/configs/mocked-patched.yaml", run_id=run_id
    )
    assert run_log.status == "SUCCESS"
    assert list(run_log.steps) == STEPS
    evaluate = run_log.steps["evaluate"].attempts[-1]
    assert evaluate.input_parameters["forecast"].value == 7.0  # from the patched train
    assert evaluate.output_parameters["mae"].value == 2.333  # the real evaluate ran
    assert run_log.parameters["mae"].kind == "metric"
