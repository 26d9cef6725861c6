"""The MLflow tracker against a real SQLite tracking store, read back with MLflow's own
client: the run, its params, its nested runs and metrics hold what the run log holds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient
from pydantic import BaseModel

from runnable_dask import Catalog, Map, Parallel, Pipeline, PythonTask, metric, pickled
from runnable_dask import json as json_return
from runnable_dask.stores.runlog import RunLog


def fit(alpha: float) -> float:
    return round(1 - abs(alpha - 0.3), 3)


def depth_score(depth: int) -> float:
    return depth / 10


def report(fit_score: list[float]) -> tuple[float, str]:
    Path("report").mkdir(exist_ok=True)
    Path("report/summary.md").write_text(f"best {max(fit_score)}\n", encoding="utf-8")
    return max(fit_score), "done"


def pipeline() -> Pipeline:
    grid = Map(
        name="grid",
        branch=Pipeline(
            steps=[PythonTask(name="fit", function=fit, returns=[metric("fit_score")])]
        ),
        iterate_on="alphas",
        iterate_as="alpha",
    )
    trees = Pipeline(
        steps=[
            PythonTask(
                name="trees", function=lambda: depth_score(4), returns=[metric("tree_score")]
            )
        ]
    )
    return Pipeline(
        steps=[
            Parallel(name="families", branches={"linear": Pipeline(steps=[grid]), "trees": trees}),
            PythonTask(
                name="report",
                function=report,
                returns=[metric("best"), json_return("note")],
                catalog=Catalog(put=["report/*"]),
            ),
        ]
    )


def configure(workdir: Path, uri: str) -> str:
    path = workdir / "mlflow.yaml"
    path.write_text(
        json.dumps(
            {
                "pipeline-executor": {"type": "local"},
                "tracking": {
                    "type": "mlflow",
                    "config": {
                        "tracking_uri": uri,
                        "experiment_name": "sweeps",
                        "log_artifacts": True,
                    },
                },
            }
        ),
        encoding="utf-8",
    )
    return str(path)


@pytest.mark.timeout(240)
def test_run_is_an_mlflow_run_holding_the_run_log_s_values(workdir: Path) -> None:
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    (workdir / "params.yaml").write_text(
        "alphas: [0.1, 0.3, 0.5]\nseed: 7\ngrid_spec: {depth: [2, 4]}\n", encoding="utf-8"
    )

    run_log: RunLog = pipeline().execute(
        configuration_file=configure(workdir, uri),
        run_id="tracked-sweep",
        parameters_file="params.yaml",
    )

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("sweeps")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    by_name = {run.info.run_name: run for run in runs}
    root = by_name["tracked-sweep"]
    assert root.info.status == "FINISHED"
    assert root.data.tags["runnable_dask.run_id"] == "tracked-sweep"
    assert root.data.tags["runnable_dask.status"] == run_log.status == "SUCCESS"
    assert root.data.params == {
        "alphas": "[0.1, 0.3, 0.5]",
        "seed": "7",
        "grid_spec": '{"depth": [2, 4]}',
    }
    assert root.data.metrics == {
        "best": run_log.step("report").attempts[-1].user_defined_metrics["best"]
    }

    # Each map iteration and branch that recorded a metric is a nested run.
    for alpha in ("0.1", "0.3", "0.5"):
        branch = f"families.linear.grid.{alpha}"
        nested = by_name[branch]
        assert nested.data.tags["mlflow.parentRunId"] == by_name["families.linear"].info.run_id
        assert nested.data.tags["runnable_dask.branch"] == branch
        assert nested.data.params == {"alpha": alpha}
        recorded = run_log.step(f"{branch}.fit").attempts[-1].user_defined_metrics
        assert nested.data.metrics == recorded
        assert nested.info.status == "FINISHED"
    assert by_name["families.linear"].data.tags["mlflow.parentRunId"] == root.info.run_id
    trees = by_name["families.trees"]
    assert trees.data.metrics == {"tree_score": 0.4}
    assert trees.data.tags["mlflow.parentRunId"] == root.info.run_id

    artifacts = {a.path for a in client.list_artifacts(root.info.run_id, "report")}
    assert artifacts == {"report/summary.md"}
    local = client.download_artifacts(root.info.run_id, "report/summary.md", str(workdir))
    assert Path(local).read_text(encoding="utf-8") == "best 1.0\n"


@pytest.mark.timeout(240)
def test_a_failed_run_is_a_failed_mlflow_run(workdir: Path) -> None:
    uri = f"sqlite:///{workdir / 'mlflow.db'}"

    def broken() -> float:
        raise ValueError("no data")

    failing = Pipeline(steps=[PythonTask(name="load", function=broken, returns=[metric("rows")])])
    with pytest.raises(Exception, match="no data"):
        failing.execute(configuration_file=configure(workdir, uri), run_id="tracked-fail")

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("sweeps")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.tags["runnable_dask.status"] == "FAIL"


@dataclass(frozen=True)
class GridPoint:
    family: str
    hyper_parameters: dict[str, Any]


class Settings(BaseModel):
    learning_rate: float
    layers: int


def grid_points() -> tuple[list[GridPoint], list[Settings]]:
    points = [GridPoint("forest", {"max_depth": d, "trees": 20, "min_leaf": None}) for d in (2, 4)]
    return points, [Settings(learning_rate=0.1, layers=n) for n in (1, 3)]


def point_score(point: GridPoint) -> float:
    return point.hyper_parameters["max_depth"] / 10


def settings_score(setting: Settings) -> float:
    return setting.layers / 10


@pytest.mark.timeout(240)
def test_a_pickled_map_item_gives_its_nested_run_readable_params(workdir: Path) -> None:
    uri = f"sqlite:///{workdir / 'mlflow.db'}"

    def over(name: str, items: str, item: str, function: Any) -> Map:
        fit = PythonTask(name="fit", function=function, returns=[metric("score")])
        return Map(name=name, branch=Pipeline(steps=[fit]), iterate_on=items, iterate_as=item)

    points = PythonTask(
        name="points", function=grid_points, returns=[pickled("points"), pickled("settings")]
    )
    sweep = Pipeline(
        steps=[
            points,
            over("forest", "points", "point", point_score),
            over("nets", "settings", "setting", settings_score),
        ]
    )
    run_log = sweep.execute(configuration_file=configure(workdir, uri), run_id="pickled-items")

    runs = MlflowClient(tracking_uri=uri).search_runs(
        [MlflowClient(tracking_uri=uri).get_experiment_by_name("sweeps").experiment_id]
    )
    nested = {
        run.data.tags["runnable_dask.branch"]: run
        for run in runs
        if "runnable_dask.branch" in run.data.tags
    }
    forest = sorted(
        (
            (run.data.params, run.data.metrics["score"])
            for name, run in nested.items()
            if name.startswith("forest.")
        ),
        key=lambda pair: pair[1],
    )
    assert forest == [
        (
            {
                "point.family": "forest",
                "point.hyper_parameters.max_depth": str(depth),
                "point.hyper_parameters.trees": "20",
                "point.hyper_parameters.min_leaf": "null",  # as JSON writes None
            },
            depth / 10,
        )
        for depth in (2, 4)
    ]
    nets = sorted(
        (
            (run.data.params, run.data.metrics["score"])
            for name, run in nested.items()
            if name.startswith("nets.")
        ),
        key=lambda pair: pair[1],
    )
    assert nets == [
        ({"setting.learning_rate": "0.1", "setting.layers": str(n)}, n / 10) for n in (1, 3)
    ]
    # The run log holds the same fields as the item's description; the value stays a name.
    records = [
        step.attempts[-1].input_parameters["point"]
        for step in run_log.walk()
        if step.name == "fit" and "point" in step.attempts[-1].input_parameters
    ]
    assert sorted(json.loads(r.description)["hyper_parameters"]["max_depth"] for r in records) == [
        2,
        4,
    ]
    assert {r.value for r in records} == {"point"}
