"""The MLflow tracker against a real SQLite tracking store, read back with MLflow's own
client: the run, its params, its nested runs and metrics hold what the run log holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from runnable_dask import Catalog, Map, Parallel, Pipeline, PythonTask, metric
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
