"""Reading runs back with ``runnable_dask.results``: what a notebook compares across runs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runnable_dask import (
    Catalog,
    ExecutionFailedError,
    Map,
    Parallel,
    Pipeline,
    PythonTask,
    metric,
    results,
)
from runnable_dask.stores.packed import PackedBranches
from runnable_dask.stores.runlog_store import RunLogNotFoundError

Run = Callable[..., Any]


def train(alpha: float) -> tuple[float, dict]:
    return round(1 - alpha, 2), {"alpha": alpha}


def evaluate(item: int) -> float:
    if item == 3:
        raise ValueError("item 3 is bad")
    return item / 10


def sweep() -> Pipeline:
    """A Parallel whose branches record metrics, then a Map over ``items``."""
    branches = {
        f"alpha_{a}": Pipeline(
            steps=[
                PythonTask(
                    name="train",
                    function=lambda a=a: train(a / 10),
                    returns=[metric(f"score_{a}"), "config"],
                )
            ]
        )
        for a in (1, 5)
    }
    evaluate_map = Map(
        name="grid",
        branch=Pipeline(
            steps=[PythonTask(name="evaluate", function=evaluate, returns=[metric("mae")])]
        ),
        iterate_on="items",
        iterate_as="item",
    )
    return Pipeline(steps=[Parallel(name="sweep", branches=branches), evaluate_map])


def write_items(workdir: Path, items: str) -> str:
    path = workdir / "params.yaml"
    path.write_text(f"items: {items}\n", encoding="utf-8")
    return str(path)


def test_steps_parameters_and_metrics_of_a_stored_run(run: Run, workdir: Path) -> None:
    run(sweep(), run_id="first", parameters_file=write_items(workdir, "[1, 2]"))

    run_log = results.load_run("first", workdir / ".run_log_store")

    rows = {row["step"]: row for row in results.steps(run_log)}
    assert list(rows) == [
        "sweep",
        "sweep.alpha_1.train",
        "sweep.alpha_5.train",
        "grid",
        "grid.1.evaluate",
        "grid.2.evaluate",
    ]  # the success nodes that end each branch are left out
    train_row = rows["sweep.alpha_5.train"]
    assert train_row["status"] == "SUCCESS"
    assert train_row["attempts"] == 1
    assert train_row["metrics"] == {"score_5": 0.5}
    assert train_row["duration"] is not None and train_row["duration"] >= 0
    assert rows["sweep"]["type"] == "parallel"
    assert rows["sweep"]["start"] <= train_row["start"] <= train_row["end"] <= rows["sweep"]["end"]

    assert results.metrics(run_log) == [
        {"run_id": "first", "step": "sweep.alpha_1.train", "metric": "score_1", "value": 0.9},
        {"run_id": "first", "step": "sweep.alpha_5.train", "metric": "score_5", "value": 0.5},
        {"run_id": "first", "step": "grid.1.evaluate", "metric": "mae", "value": 0.1},
        {"run_id": "first", "step": "grid.2.evaluate", "metric": "mae", "value": 0.2},
    ]
    values = {row["parameter"]: (row["kind"], row["value"]) for row in results.parameters(run_log)}
    assert values["items"] == ("json", [1, 2])
    assert values["mae"] == ("metric", [0.1, 0.2])
    assert values["config"] == ("json", {"alpha": 0.5})  # the last branch wins


def test_a_failed_step_is_a_row_with_its_message(run: Run, workdir: Path) -> None:
    with pytest.raises(ExecutionFailedError):
        run(sweep(), run_id="failed", parameters_file=write_items(workdir, "[2, 3]"))

    rows = {r["step"]: r for r in results.steps(results.load_run("failed", ".run_log_store"))}
    assert rows["grid.3.evaluate"]["status"] == "FAIL"
    assert "ValueError: item 3 is bad" in rows["grid.3.evaluate"]["message"]
    assert rows["grid.2.evaluate"]["status"] == "SUCCESS"
    assert rows["grid"]["status"] == "FAIL"


def test_runs_lists_every_run_newest_first_and_compares_as_a_dataframe(
    run: Run, workdir: Path
) -> None:
    run(sweep(), run_id="one", parameters_file=write_items(workdir, "[1]"))
    run(sweep(), run_id="two", parameters_file=write_items(workdir, "[2]"))

    listed = results.runs(".run_log_store")
    assert [(r["run_id"], r["status"]) for r in listed] == [("two", "SUCCESS"), ("one", "SUCCESS")]
    assert listed[0]["start"] >= listed[1]["end"]

    metric_rows = [row for r in listed for row in results.metrics(results.load_run(r["run_id"]))]
    frame = results.to_dataframe(metric_rows)
    table = frame[frame["metric"] == "mae"].pivot(index="run_id", columns="step", values="value")
    assert table.loc["one", "grid.1.evaluate"] == 0.1
    assert table.loc["two", "grid.2.evaluate"] == 0.2


def test_an_unknown_run_is_refused_naming_recent_ones(run: Run, workdir: Path) -> None:
    run(sweep(), run_id="known", parameters_file=write_items(workdir, "[1]"))

    with pytest.raises(RunLogNotFoundError, match=r"no run 'knwn' in .*recent runs: known"):
        results.load_run("knwn")
    with pytest.raises(RunLogNotFoundError, match="holds no run logs"):
        results.load_run("known", workdir / "elsewhere")


def test_an_unreadable_run_log_is_listed_as_such(workdir: Path) -> None:
    folder = workdir / ".run_log_store"
    folder.mkdir()
    (folder / "broken.json").write_text("{not json", encoding="utf-8")

    assert results.runs(folder) == [
        {
            "run_id": "broken",
            "status": "UNREADABLE",
            "tag": "",
            "start": None,
            "end": None,
            "duration": None,
        }
    ]


def test_to_dataframe_without_pandas_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if it were not installed

    with pytest.raises(ImportError, match="pip install pandas"):
        results.to_dataframe([{"step": "train", "status": "SUCCESS"}])


def test_importing_runnable_dask_does_not_import_pandas() -> None:
    code = "import runnable_dask, runnable_dask.results, sys; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_catalog_finds_the_runs_files_from_another_folder(
    run: Run, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def write_report() -> None:
        Path("report.md").write_text("# best: alpha 0.1\n", encoding="utf-8")

    pipeline = Pipeline(
        steps=[PythonTask(name="report", function=write_report, catalog=Catalog(put=["report.md"]))]
    )
    run(pipeline, run_id="with-files")
    (workdir / "elsewhere").mkdir()
    monkeypatch.chdir(workdir / "elsewhere")  # a notebook in another folder

    catalog = results.catalog(results.load_run("with-files", workdir / ".run_log_store"))
    assert catalog.url("report.md") == str(workdir / ".catalog" / "with-files" / "report.md")
    assert catalog.read_bytes("report.md") == b"# best: alpha 0.1\n"


def prepare() -> int:
    return 1


def test_a_runs_span_is_read_from_its_top_level_when_it_can_be(
    run: Run, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first step's start and the terminal's end bound every attempt: the span that
    ``runs`` and ``show`` give is every attempt's, read without the items of a map after
    the first step (a Parallel first is walked)."""
    after_a_step = Pipeline(steps=[PythonTask(name="prepare", function=prepare), sweep().steps[1]])
    many = "[" + ", ".join(str(i) for i in range(4, 304)) + "]"
    run(after_a_step, run_id="top", parameters_file=write_items(workdir, many))
    with pytest.raises(ExecutionFailedError):
        run(after_a_step, run_id="top-failed", parameters_file=write_items(workdir, "[2, 3]"))
    run(sweep(), run_id="parallel-first", parameters_file=write_items(workdir, "[1, 2]"))

    for run_id in ("top", "top-failed", "parallel-first"):
        run_log = results.load_run(run_id, ".run_log_store")
        every = results.Span.of(results.attempt_times(run_log.steps.values()))
        assert results.run_span(run_log) == every, run_id
        assert every.start is not None and every.end is not None

    def items_read(self: PackedBranches) -> tuple[str, str]:
        raise AssertionError("the map's items were read for the run's span")

    monkeypatch.setattr(PackedBranches, "packed_times", items_read)
    run_log = results.load_run("top", ".run_log_store")
    assert isinstance(run_log.steps["grid"].branches, PackedBranches)
    assert results.run_span(run_log).seconds is not None
