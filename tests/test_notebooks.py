"""The notebooks in ``notebooks/`` run top to bottom, as a reader would run them.

Each is executed by papermill in a temporary folder. ``getting-started`` and ``sweep``
move to the repository root (their ``project_root`` parameter) and write their run there,
under a run id the test gives and removes afterwards.
"""

from __future__ import annotations

import base64
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import nbformat
import papermill
import pytest
from project_copy import project_root

from runnable_dask.stores.cache_store import CacheStore

ROOT = project_root()  # a copy: runs write nothing into the checkout
NOTEBOOKS = ROOT / "notebooks"
SMALL_SWEEP = """\
test_size: 0.25
cv_folds: 3
seed: 0
grids:
  logistic_regression: {C: [0.1, 1.0]}
  random_forest: {n_estimators: [20], max_depth: [3]}
  gradient_boosting: {n_estimators: [20], max_depth: [2]}
"""


def _text_outputs(notebook: nbformat.NotebookNode) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", "") or output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def _tables(notebook: nbformat.NotebookNode) -> list[str]:
    """The HTML tables shown (DataFrames), in cell order."""
    return [html for html in _outputs(notebook, "text/html") if 'class="dataframe"' in html]


def _outputs(notebook: nbformat.NotebookNode, mime: str) -> list[str]:
    """Every output of one MIME type (``text/html``, ``image/png``, ...), in cell order."""
    return [
        output["data"][mime]
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if mime in output.get("data", {})
    ]


@pytest.fixture
def run_id() -> Iterator[str]:
    """A run id for a notebook's run in the repository; its records are removed after."""
    run_id = f"test-notebook-{uuid.uuid4().hex[:8]}"
    had_report = (ROOT / "report").exists()
    cache = ROOT / ".catalog" / ".cache"  # the sweep caches its steps beside the catalog
    had_cache = cache.exists()
    yield run_id
    if not had_cache:
        shutil.rmtree(cache, ignore_errors=True)
    else:
        store = CacheStore(str(cache))
        store.remove([e.key for e in store.entries() if e.run_id == run_id])
    (ROOT / ".run_log_store" / f"{run_id}.json").unlink(missing_ok=True)
    shutil.rmtree(ROOT / ".catalog" / run_id, ignore_errors=True)
    if not had_report:  # the sweep's last step writes it in the working folder
        shutil.rmtree(ROOT / "report", ignore_errors=True)


def _execute(name: str, folder: Path, **parameters: str) -> nbformat.NotebookNode:
    executed = folder / name
    papermill.execute_notebook(
        str(NOTEBOOKS / name),
        str(executed),
        parameters={"project_root": str(ROOT), **parameters},
        progress_bar=False,
        cwd=folder,
    )
    return nbformat.read(executed, as_version=4)


@pytest.mark.cluster
def test_getting_started_runs_the_seed_pipeline_and_reads_it_back(
    tmp_path: Path, run_id: str
) -> None:
    notebook = _execute("getting-started.ipynb", tmp_path, run_id=run_id)

    text = _text_outputs(notebook)
    assert f"Run {run_id}" in text
    assert "Dashboard: http://127.0.0.1:" in text
    assert "'SUCCESS'" in text
    summaries = [h for h in _outputs(notebook, "text/html") if f"<b>Run {run_id}</b>" in h]
    assert len(summaries) == 1 and ">SUCCESS<" in summaries[0]  # the run log, as HTML
    table, runs = _tables(notebook)  # the steps, then the runs
    for branch in ("branch1", "branch2"):
        for step in ("hello_stub", "hello_python", "hello_shell", "hello_notebook"):
            assert f"<td>parallel_step.{branch}.{step}</td>" in table
    assert "<td>continue_processing</td>" in table
    assert "FAIL" not in table
    assert "Hello World!" in text  # a step's log, read from the catalog
    assert f"<td>{run_id}</td>" in runs
    # each run's progress is one display: the seed's steps, then the map's bar
    steps, live = [h for h in _outputs(notebook, "text/html") if "runnable-dask-progress" in h]
    assert "parallel_step.branch1.hello_notebook" in steps
    assert "40 done, of 40 iterations" in live  # the map's bar, in its last state
    assert "greet_all.3.hello" not in text + live  # no line per item


@pytest.mark.cluster
def test_sweep_notebook_shows_the_chart_and_every_configuration(
    tmp_path: Path, run_id: str
) -> None:
    parameters_file = tmp_path / "small.yaml"
    parameters_file.write_text(SMALL_SWEEP, encoding="utf-8")

    notebook = _execute(
        "sweep.ipynb", tmp_path, run_id=run_id, parameters_file=str(parameters_file)
    )

    assert "'SUCCESS'" in _text_outputs(notebook)
    (chart,) = _outputs(notebook, "image/png")
    stored = (ROOT / ".catalog" / run_id / "report" / "sweep-scores.png").read_bytes()
    assert base64.b64decode(chart) == stored  # the run's own chart, shown
    (summary,) = _outputs(notebook, "text/markdown")
    assert "4 configurations in 3 model families" in summary
    assert "| logistic_regression | C=" in summary
    (configurations,) = _tables(notebook)
    for family, configuration in (
        ("logistic_regression", "C=0.1"),
        ("logistic_regression", "C=1.0"),
        ("random_forest", "n_estimators=20, max_depth=3"),
        ("gradient_boosting", "n_estimators=20, max_depth=2"),
    ):
        assert f"<td>{family}</td>\n      <td>{configuration}</td>" in configurations


@pytest.mark.cluster
def test_cluster_notebook_runs_a_pipeline_on_its_own_cluster(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    executed = tmp_path / "cluster.ipynb"

    papermill.execute_notebook(
        str(NOTEBOOKS / "cluster.ipynb"), str(executed), progress_bar=False, cwd=tmp_path
    )

    notebook = nbformat.read(executed, as_version=4)
    text = _text_outputs(notebook)
    assert "Dashboard: http://127.0.0.1:" in text
    assert "'SUCCESS'" in text
    assert "['done', 'greetings', 'report', 'say']" in text
    widget = notebook.cells[1]["outputs"][0]["data"]
    assert "text/html" in widget and "Dashboard" in widget["text/html"]
