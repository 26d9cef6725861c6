"""The tracking hooks: loaded from the configuration, called in order, never fatal."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from runnable_dask import ConfigurationError, Map, Pipeline, PythonTask, metric

TRACKERS = """
from runnable_dask.tracking import Tracker

CALLS = []


class Recording(Tracker):
    def __init__(self, label="recording"):
        self.label = label

    def run_started(self, **fields):
        CALLS.append(("run_started", fields))

    def step_finished(self, **fields):
        CALLS.append(("step_finished", fields))

    def run_finished(self, **fields):
        CALLS.append(("run_finished", fields))


class Broken(Tracker):
    def step_finished(self, **fields):
        raise ConnectionError("tracking server is down")
"""


@pytest.fixture
def trackers_module(workdir: Path, monkeypatch: pytest.MonkeyPatch):
    (workdir / "my_trackers.py").write_text(TRACKERS, encoding="utf-8")
    monkeypatch.syspath_prepend(str(workdir))
    import my_trackers

    yield my_trackers
    sys.modules.pop("my_trackers", None)


def configure(workdir: Path, tracking: object) -> str:
    path = workdir / "tracked.yaml"
    path.write_text(
        json.dumps({"pipeline-executor": {"type": "local"}, "tracking": tracking}),
        encoding="utf-8",
    )
    return str(path)


def score(item: int) -> float:
    return item / 10


def sweep() -> Pipeline:
    return Pipeline(
        steps=[
            Map(
                name="grid",
                branch=Pipeline(
                    steps=[PythonTask(name="fit", function=score, returns=[metric("accuracy")])]
                ),
                iterate_on="items",
                iterate_as="item",
            )
        ]
    )


def test_hooks_are_called_in_order_with_their_documented_fields(
    workdir: Path, trackers_module
) -> None:
    config = configure(workdir, {"type": "my_trackers:Recording", "config": {"label": "x"}})
    (workdir / "params.yaml").write_text("items: [1, 2]\n", encoding="utf-8")

    run_log = sweep().execute(
        configuration_file=config, run_id="hooked", parameters_file="params.yaml"
    )

    calls = trackers_module.CALLS
    assert calls[0][0] == "run_started"
    assert calls[-1][0] == "run_finished"
    started = calls[0][1]
    assert started["run_id"] == "hooked"
    assert started["parameters"] == {"items": [1, 2]}
    assert started["resumed"] is False
    steps = {f["internal_name"]: f for name, f in calls if name == "step_finished"}
    assert set(steps) == {"grid", "grid.1.fit", "grid.2.fit"}
    fit = steps["grid.2.fit"]
    assert fit["metrics"] == {"accuracy": 0.2}
    assert fit["inputs"] == {"item": 2}
    assert fit["branches"] == ("grid.2",)
    assert fit["status"] == "SUCCESS"
    assert fit["attempts"] == 1
    assert fit["metrics"] == run_log.step("grid.2.fit").attempts[-1].user_defined_metrics
    assert steps["grid"]["branches"] == ()
    finished = calls[-1][1]
    assert finished["status"] == "SUCCESS"
    assert finished["run_log"].run_id == "hooked"


def test_an_error_in_a_hook_is_reported_and_the_run_goes_on(
    workdir: Path, trackers_module, capsys: pytest.CaptureFixture[str]
) -> None:
    config = configure(workdir, [{"type": "my_trackers:Broken"}, {"type": "my_trackers:Recording"}])
    (workdir / "params.yaml").write_text("items: [1]\n", encoding="utf-8")

    run_log = sweep().execute(
        configuration_file=config, run_id="broken-tracker", parameters_file="params.yaml"
    )

    assert run_log.status == "SUCCESS"
    printed = capsys.readouterr().out
    assert "tracking Broken.step_finished: ConnectionError: tracking server is down" in printed
    stored = json.loads((workdir / ".run_log_store" / "broken-tracker.json").read_text())
    assert stored["status"] == "SUCCESS"
    assert stored["run_config"]["tracking_errors"][0].startswith("Broken.step_finished")
    # The other tracker still heard everything.
    assert trackers_module.CALLS[-1][0] == "run_finished"


@pytest.mark.parametrize(
    ("tracking", "message"),
    [
        ({"type": "wandb"}, r"tracking: no tracker 'wandb' \(known: mlflow"),
        ({"type": "nowhere.at_all:Tracker"}, r"tracking: cannot load 'nowhere\.at_all:Tracker'"),
        ({"type": "mlflow", "config": {"colour": "red"}}, r"tracking: mlflow could not be set up"),
        ({"config": {}}, r"tracking\.0\.type: Field required"),
    ],
)
def test_bad_tracking_configuration_is_refused_before_the_run(
    workdir: Path, tracking: object, message: str
) -> None:
    config = configure(workdir, tracking)
    with pytest.raises(ConfigurationError, match=message):
        sweep().execute(configuration_file=config, run_id="never")
    assert not (workdir / ".run_log_store" / "never.json").exists()
