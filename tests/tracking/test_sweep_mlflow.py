"""The sweep's documented MLflow variant (examples/configs/mlflow.yaml), as a user runs it:
one MLflow run, a nested run per configuration holding its cross-validated accuracy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[2]
GRIDS = {
    "logistic_regression": {"C": [0.1, 1.0]},
    "random_forest": {"n_estimators": [20], "max_depth": [3]},
    "gradient_boosting": {"n_estimators": [20], "max_depth": [2]},
}


@pytest.mark.timeout(300)
def test_sweep_tracked_in_mlflow_with_a_nested_run_per_configuration(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "examples/configs/mlflow.yaml").read_text(encoding="utf-8"))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = config["tracking"]["config"]
    tracker["tracking_uri"] = uri  # the example's store and artifacts, kept out of the repo
    tracker["artifact_location"] = str(tmp_path / "artifacts")
    config["pipeline-executor"] = {"type": "local"}
    config["run-log-store"] = {"type": "file-system", "config": {"log_folder": str(tmp_path)}}
    config["catalog"] = {"type": "file-system", "config": {"catalog_location": str(tmp_path)}}
    (tmp_path / "mlflow.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
    environ |= {
        "RUNNABLE_CONFIGURATION_FILE": str(tmp_path / "mlflow.yaml"),
        "RUNNABLE_RUN_ID": "sweep-in-mlflow",
        "RUNNABLE_PRM_grids": json.dumps(GRIDS),
        "RUNNABLE_PRM_cv_folds": "3",
    }
    had_report = (ROOT / "report").exists()
    try:
        process = subprocess.run(
            [sys.executable, "examples/ml_sweep/sweep.py"],
            cwd=ROOT,
            env=environ,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    finally:
        if not had_report:
            shutil.rmtree(ROOT / "report", ignore_errors=True)
    assert process.returncode == 0, process.stdout + process.stderr
    run_log = json.loads((tmp_path / "sweep-in-mlflow.json").read_text(encoding="utf-8"))

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("ml_sweep")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    root = runs["sweep-in-mlflow"]
    assert root.info.status == "FINISHED"
    assert root.data.metrics["test_accuracy"] == run_log["parameters"]["test_accuracy"]["value"]
    assert root.data.params["cv_folds"] == "3"
    fits = {
        name: step["attempts"][-1]["user_defined_metrics"]
        for family in run_log["steps"]["sweep"]["branches"].values()
        for grid in family["steps"].values()
        for branch in grid["branches"].values()
        for name, step in branch["steps"].items()
        if step["name"] == "fit"
    }
    assert len(fits) == 4
    for name, metrics in fits.items():
        nested = runs[name.removesuffix(".fit")]
        assert nested.data.metrics == metrics
        # The configuration is a pickled map item (a dataclass): its fields are the params.
        point = name.removesuffix(".fit").rsplit(".grid.", 1)[1]  # "C=0.1", as str() says
        params = {
            key.removeprefix("config.hyper_parameters."): value
            for key, value in nested.data.params.items()
        }
        assert ", ".join(f"{k}={v}" for k, v in params.items()) == point
    artifacts = {a.path for a in client.list_artifacts(root.info.run_id, "report")}
    assert artifacts == {"report/summary.md", "report/sweep-scores.png"}
    assert (tmp_path / "artifacts").is_dir()
    assert not (ROOT / "mlruns").exists()
