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


def test_a_map_of_many_items_is_summarised_without_reading_them(
    run, workdir, items_read: list[str]
) -> None:
    """Past a thousand items, a map shows its items' statuses from their packs; only the
    branches listed (the first ones, the failed one) are read."""
    (workdir / "params.yaml").write_text(f"xs: {list(range(1200))}\n", encoding="utf-8")
    scored = Pipeline(steps=[PythonTask(name="score", function=score, returns=[metric("acc")])])
    pipeline = Pipeline(steps=[Map(name="grid", branch=scored, iterate_on="xs", iterate_as="x")])
    with pytest.raises(ExecutionFailedError):
        run(pipeline, parameters_file="params.yaml")
    run_log = results.load_run("test-run")
    items_read.clear()
    shown = run_log._repr_html_()
    assert "<code>grid</code>: 1,200 items" in shown
    assert "1 FAIL</b>, <b style='color:#2ca02c'>1,199 SUCCESS" in shown
    assert "ValueError: thirteen is unlucky" in shown and "<code>grid.13.score</code>" in shown
    assert "... 1194 more branches" in shown  # the first 5, and the failed 13
    assert set(items_read) == {f"grid.{x}" for x in (0, 1, 2, 3, 4, 13)}
