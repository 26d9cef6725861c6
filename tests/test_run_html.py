"""What Jupyter shows for a run log: a readable HTML summary (``RunLog._repr_html_``)."""

from __future__ import annotations

import pytest

from runnable_dask import ExecutionFailedError, Map, Pipeline, PythonTask, metric, results


def score(x: int) -> float:
    if x == 13:
        raise ValueError("thirteen is unlucky")
    return x / 100


def test_a_run_log_shows_as_a_summary_with_failures_and_few_branches(run, workdir) -> None:
    (workdir / "params.yaml").write_text(f"xs: {list(range(30))}\n", encoding="utf-8")
    scored = Pipeline(steps=[PythonTask(name="score", function=score, returns=[metric("acc")])])
    pipeline = Pipeline(steps=[Map(name="grid", branch=scored, iterate_on="xs", iterate_as="x")])
    with pytest.raises(ExecutionFailedError):
        run(pipeline, parameters_file="params.yaml")
    shown = results.load_run("test-run")._repr_html_()
    assert "Run test-run" in shown and ">FAIL<" in shown
    assert "ValueError: thirteen is unlucky" in shown  # what failed, and why
    assert "<code>grid.13.score</code>" in shown
    assert ">13<" in shown  # the failed item is listed among the branches
    assert "... 24 more branches" in shown  # 30 items: the first 5, the failed one
    assert "29 metrics" in shown and "grid.2.score" in shown
