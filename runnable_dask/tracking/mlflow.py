"""The MLflow tracker: each run an MLflow run, each branch that records values a nested run.

``pip install 'runnable_dask[mlflow]'`` (mlflow-skinny with SQLAlchemy and Alembic for an
SQLite store). In the configuration::

    tracking:
      type: mlflow
      config:
        tracking_uri: sqlite:///mlflow.db   # default: MLflow's own (MLFLOW_TRACKING_URI)
        experiment_name: model-sweeps        # default: runnable_dask
        log_artifacts: true                  # the catalog's files (default: false)
        artifact_location: s3://bucket/mlflow  # a new experiment's artifacts (default:
                                               # MLflow's, ./mlruns beside an SQLite store)

What goes where:

- the **run**: an MLflow run named after the run id, its initial parameters as params
  (dicts and lists as JSON; pickled values are left out), the metrics of steps at the top
  of the pipeline, the tags ``runnable_dask.run_id``, ``runnable_dask.status``,
  ``runnable_dask.dag_hash`` and ``runnable_dask.tag``; its MLflow status FINISHED or
  FAILED; the catalog's files as artifacts if asked (the ``.checkpoints`` folder aside);
- each **branch instance** in which a step records metrics (a map iteration, a Parallel
  or Conditional branch, a loop iteration) a **nested run** under the run (or under the
  branch it is nested in), named after the branch (``sweep.random_forest.grid.max_depth=4``),
  with the steps' metrics and, as params, the json inputs of its steps that differ from
  the run's (a map iteration's item). MLflow's UI lists the nested runs under the run
  and compares them side by side (table, parallel coordinates), which tags on one run
  would not allow; every value stays under its own name, as in the run log.

Metrics are logged as steps report them, in batches, at most about once a second.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any

from runnable_dask.tracking import Tracker

_MAX_PARAM = 6000  # MLflow's limit on a param's length
_FLUSH_INTERVAL = 1.0


class MlflowTracker(Tracker):
    """Logs runs, their branches, parameters and metrics to an MLflow tracking store."""

    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment_name: str = "runnable_dask",
        log_artifacts: bool = False,
        artifact_location: str | None = None,
    ) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.experiment_name = experiment_name
        self.log_artifacts = log_artifacts
        self.artifact_location = artifact_location
        self._root = ""
        self._run_id = ""
        self._runs: dict[str, str] = {}  # branch internal name -> nested MLflow run id
        self._failed: set[str] = set()
        self._params: dict[str, Any] = {}
        self._pending: dict[str, list[Any]] = {}
        self._last_flush = 0.0

    def run_started(
        self, *, run_id: str, tag: str, parameters: dict[str, Any], dag_hash: str, **_: Any
    ) -> None:
        from mlflow.entities import Param, RunTag

        experiment = self.client.get_experiment_by_name(self.experiment_name)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else self.client.create_experiment(self.experiment_name, self.artifact_location)
        )
        self._experiment = experiment_id
        tags = {
            "mlflow.runName": run_id,
            "runnable_dask.run_id": run_id,
            "runnable_dask.status": "PROCESSING",
            "runnable_dask.dag_hash": dag_hash,
            "runnable_dask.tag": tag,
        }
        self._run_id = run_id
        self._root = self.client.create_run(experiment_id, run_name=run_id, tags=tags).info.run_id
        self._params = parameters
        self.client.log_batch(
            self._root,
            params=[Param(name, _param(value)) for name, value in parameters.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )

    def step_finished(
        self,
        *,
        status: str,
        metrics: dict[str, Any],
        inputs: dict[str, Any],
        end_time: str,
        branches: tuple[str, ...],
        described: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        from mlflow.entities import Metric

        if described:
            inputs = {**inputs, **flatten(described)}
        run = self._run_for(branches, inputs) if metrics or status != "SUCCESS" else self._root
        if status != "SUCCESS":
            self._failed.update(branches)
        when = _millis(end_time)
        for name, value in metrics.items():
            number = _number(value)
            if number is not None:
                self._pending.setdefault(run, []).append(Metric(name, number, when, 0))
        if time.monotonic() - self._last_flush > _FLUSH_INTERVAL:
            self._flush()

    def run_finished(self, *, status: str, catalog: Any, **_: Any) -> None:
        if not self._root:
            return
        self._flush()
        for branch, run in self._runs.items():
            self.client.set_terminated(run, "FAILED" if branch in self._failed else "FINISHED")
        if self.log_artifacts:
            self._log_catalog(catalog)
        self.client.set_tag(self._root, "runnable_dask.status", status)
        self.client.set_terminated(self._root, "FINISHED" if status == "SUCCESS" else "FAILED")

    def _run_for(self, branches: tuple[str, ...], inputs: dict[str, Any]) -> str:
        """The nested run of the innermost branch (made with its parents when first seen)."""
        from mlflow.entities import Param

        parent = self._root
        for depth, branch in enumerate(branches):
            run = self._runs.get(branch)
            if run is None:
                tags = {
                    "mlflow.parentRunId": parent,
                    "runnable_dask.run_id": self._run_id,
                    "runnable_dask.branch": branch,
                }
                run = self.client.create_run(
                    self._experiment, run_name=branch, tags=tags
                ).info.run_id
                self._runs[branch] = run
                if depth == len(branches) - 1:
                    own = {
                        name: value
                        for name, value in inputs.items()
                        if _loggable(value)
                        and (name not in self._params or self._params[name] != value)
                    }
                    if own:
                        self.client.log_batch(
                            run, params=[Param(k, _param(v)) for k, v in own.items()]
                        )
            parent = run
        return parent

    def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        for run, metrics in pending.items():
            for start in range(0, len(metrics), 1000):  # MLflow's batch limit
                self.client.log_batch(run, metrics=metrics[start : start + 1000])
        self._last_flush = time.monotonic()

    def _log_catalog(self, catalog: Any) -> None:
        with tempfile.TemporaryDirectory(prefix="runnable-dask-mlflow-") as scratch:
            for relative in catalog.list_files(""):
                if relative.startswith(".checkpoints/"):
                    continue
                data = catalog.read_bytes(relative)
                if data is None:
                    continue
                local = os.path.join(scratch, relative)
                os.makedirs(os.path.dirname(local), exist_ok=True)
                with open(local, "wb") as handle:
                    handle.write(data)
                folder = os.path.dirname(relative) or None
                self.client.log_artifact(self._root, local, artifact_path=folder)


def flatten(fields: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested fields as dotted names (``config.hyper_parameters.C``): one MLflow param
    each, so the UI compares nested runs by them."""
    flat: dict[str, Any] = {}
    for name, value in fields.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{key}."))
        else:
            flat[key] = value if _loggable(value) else _param(value)
    return flat


def _loggable(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


def _param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:_MAX_PARAM]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _millis(iso_time: str) -> int:
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(iso_time).timestamp() * 1000)
    except ValueError:
        return int(time.time() * 1000)
