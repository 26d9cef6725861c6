"""The notebooks in ``notebooks/`` run top to bottom, as a reader would run them."""

from __future__ import annotations

from pathlib import Path

import nbformat
import papermill
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def _text_outputs(notebook: nbformat.NotebookNode) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", "") or output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


@pytest.mark.cluster
def test_getting_started_runs_the_sweep_and_reads_the_run_log(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    executed = tmp_path / "getting-started.ipynb"

    papermill.execute_notebook(
        str(NOTEBOOKS / "getting-started.ipynb"), str(executed), progress_bar=False, cwd=tmp_path
    )

    text = _text_outputs(nbformat.read(executed, as_version=4))
    assert "Dashboard: http://127.0.0.1:" in text
    assert "'SUCCESS'" in text
    for alpha in (1, 3, 5):
        assert f"sweep.alpha_{alpha}.train" in text
    assert "best score 1.0 from score_3" in text
    assert len(list((tmp_path / ".run_log_store").glob("*.json"))) == 1


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
