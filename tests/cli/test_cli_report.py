"""``runnable-dask report``: one HTML file made from a run log, for any executor, and the
catalog option that writes it at the end of every run."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from runnable_dask import (
    ExecutionFailedError,
    Map,
    Parallel,
    Pipeline,
    PythonTask,
    ShellTask,
    metric,
)
from runnable_dask.run_report import REPORT_NAME

Invoke = Callable[..., Result]
RUN_ID = "reported"


def score(alpha: float) -> float:
    print(f"scoring {alpha}")
    return 1.0 - alpha


def flaky_once(workdir: str) -> None:
    tried = Path(workdir, "tried")
    if not tried.exists():
        tried.touch()
        raise RuntimeError("the first attempt fails")


def sweep(workdir: Path) -> Pipeline:
    scored = Pipeline(
        steps=[PythonTask(name="score", function=score, returns=[metric("accuracy")])]
    )
    return Pipeline(
        steps=[
            Parallel(
                name="both",
                branches={
                    "mapped": Pipeline(
                        steps=[
                            Map(name="grid", branch=scored, iterate_on="alphas", iterate_as="alpha")
                        ]
                    ),
                    "shell": Pipeline(
                        steps=[ShellTask(name="write", command="echo hi > out.txt", catalog=None)]
                    ),
                },
            ),
            PythonTask(name="flaky", function=flaky_once, retries=1),
        ]
    )


def run_sweep(workdir: Path, config: str, run_id: str = RUN_ID):
    (workdir / "params.yaml").write_text(
        f"alphas: [0.1, 0.5, 0.9]\nworkdir: {json.dumps(str(workdir))}\n", encoding="utf-8"
    )
    return sweep(workdir).execute(
        configuration_file=config, run_id=run_id, parameters_file="params.yaml"
    )


def script_sources(document: str) -> list[str]:
    return re.findall(r"<script[^>]*\ssrc=[\"']([^\"']+)", document)


def test_the_report_holds_every_step_attempt_metric_and_parameter(
    workdir: Path, local_config: Path, invoke: Invoke
) -> None:
    run_log = run_sweep(workdir, str(local_config))
    result = invoke("report", RUN_ID)
    assert result.exit_code == 0, result.output
    path = Path(result.output.strip())
    assert path == workdir / ".catalog" / RUN_ID / REPORT_NAME
    document = path.read_text(encoding="utf-8")
    assert script_sources(document) == []  # BokehJS is inside: it opens offline
    for step in run_log.walk():
        if step.step_type not in ("success", "fail"):
            assert step.internal_name in document, step.internal_name
    for alpha, accuracy in (("0.1", 0.9), ("0.5", 0.5), ("0.9", 0.09999999999999998)):
        assert f"both.mapped.grid.{alpha}.score" in document
        assert str(accuracy) in document
    assert "the first attempt fails" in document  # the retried step's first attempt
    assert "logs/both.mapped.grid.0.1.score.execution.log" in document  # it printed
    assert "alphas" in document and "accuracy" in document


def test_the_report_goes_where_asked_and_refuses_an_unknown_run(
    workdir: Path, local_config: Path, invoke: Invoke
) -> None:
    run_sweep(workdir, str(local_config))
    target = workdir / "elsewhere.html"
    assert invoke("report", RUN_ID, "-o", str(target)).exit_code == 0
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    refused = invoke("report", "no-such-run")
    assert refused.exit_code == 2
    assert "no run 'no-such-run'" in refused.output and RUN_ID in refused.output


def test_the_catalog_option_writes_the_report_at_the_end_of_every_run(
    workdir: Path, capsys
) -> None:
    config = workdir / "report.yaml"
    config.write_text(
        "pipeline-executor:\n  type: local\n"
        "catalog:\n  type: file-system\n  config: {run_report: true}\n",
        encoding="utf-8",
    )
    run_log = run_sweep(workdir, str(config), run_id="at-end")
    path = workdir / ".catalog" / "at-end" / REPORT_NAME
    assert run_log.run_config["run_report"] == str(path)
    assert "both.mapped.grid.0.5.score" in path.read_text(encoding="utf-8")
    assert f"Run report: {path}" in capsys.readouterr().out


def graded(x: int) -> float:
    if x == 700:
        raise ValueError("item 700 is bad")
    return x / 1000


def test_a_map_of_many_items_is_reported_by_its_counts_and_the_items_that_matter(
    workdir: Path, local_config: Path, invoke: Invoke
) -> None:
    """A report listed every item: 30 s and 44 MB for 100,000. Past a thousand items, a
    map shows its items by status, its first branches, the failed ones, and how many more
    it has."""
    (workdir / "params.yaml").write_text(f"xs: {list(range(1200))}\n", encoding="utf-8")
    scored = Pipeline(steps=[PythonTask(name="grade", function=graded, returns=[metric("g")])])
    pipeline = Pipeline(steps=[Map(name="grid", branch=scored, iterate_on="xs", iterate_as="x")])
    with pytest.raises(ExecutionFailedError):
        pipeline.execute(
            configuration_file=str(local_config), run_id="big", parameters_file="params.yaml"
        )

    result = invoke("report", "big")
    assert result.exit_code == 0, result.output
    document = Path(result.output.strip()).read_text(encoding="utf-8")
    assert "1,200 items" in document and "1,199 SUCCESS" in document
    assert "grid.19.grade" in document and "grid.700.grade" in document  # first 20, failed
    assert "grid.20.grade" not in document and "grid.1199.grade" not in document
    assert "1,179 more branches, not listed here" in document
    assert "runnable-dask show big --all lists them all" in document
    assert "item 700 is bad" in document
