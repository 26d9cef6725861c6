"""The Dask performance report of a run: stored in its catalog, naming the steps."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from runnable_dask import Pipeline, PythonTask
from runnable_dask.executors.report import REPORT_NAME, performance_report
from runnable_dask.stores.catalog import RunCatalog

from .conftest import DaskProcesses

pytestmark = pytest.mark.cluster


def nap() -> None:
    time.sleep(0.01)


def test_report_lands_in_the_catalog_and_names_the_steps(
    tcp_cluster: DaskProcesses, tmp_path: Path
) -> None:
    catalog = RunCatalog(str(tmp_path / "catalog"), "reported-run")
    graph = {
        "train_model-1234": (time.sleep, 0.2),
        "hello_shell-5678": (time.sleep, 0.2),
    }
    code = "runnable_dask run reported-run"
    with tcp_cluster.client() as client, performance_report(client, catalog, code) as report:
        client.get(graph, list(graph))

    assert report.error is None
    assert report.url == catalog.url(REPORT_NAME)
    html = (tmp_path / "catalog" / "reported-run" / REPORT_NAME).read_text(encoding="utf-8")
    assert "<html" in html.lower()
    for step in ("train_model", "hello_shell"):
        assert step in html
    assert code in html  # its Calling Code, not our internals


def test_a_local_run_stores_no_dask_report(workdir: Path, local_config: Path) -> None:
    """The ``local`` executor has no scheduler: no Dask report, and the log names none."""
    pipeline = Pipeline(steps=[PythonTask(name="nap", function=nap)])
    run_log = pipeline.execute(configuration_file=str(local_config), run_id="local-run")

    assert run_log.status == "SUCCESS"
    assert "performance_report" not in run_log.run_config
    assert not list(workdir.rglob(REPORT_NAME))
