"""In Jupyter, a run shows one live display (its bars and step lines, updated in place),
not a line per map item: a real notebook, run by papermill in a real kernel."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import papermill
import pytest

SETUP = """\
import time

from runnable_dask import Map, Parallel, Pipeline, PythonTask
from runnable_dask.exceptions import ExecutionFailedError


def work():
    time.sleep(0.05)


def square(x: int):
    if x == 7:
        raise ValueError("seven is refused")
    return x * x


work_branch = Pipeline(steps=[PythonTask(name="work", function=work)])
wide = Parallel(name="wide", branches={f"b{i}": work_branch for i in range(12)})
squares = Map(
    name="squares",
    branch=Pipeline(steps=[PythonTask(name="sq", function=square, returns=["y"])]),
    iterate_on="xs",
    iterate_as="x",
)
"""
RUN = """\
try:
    Pipeline(steps=[wide, squares]).execute(
        configuration_file="config.yaml", parameters_file="params.yaml"
    )
except ExecutionFailedError as failed:
    print("failed:", failed.run_id)
"""


def _outputs(notebook: nbformat.NotebookNode) -> list[dict]:
    return [output for cell in notebook.cells for output in cell.get("outputs", [])]


@pytest.mark.timeout(240)
def test_a_notebook_shows_one_live_display_not_a_line_per_item(workdir: Path) -> None:
    (workdir / "config.yaml").write_text("pipeline-executor:\n  type: local\n", encoding="utf-8")
    (workdir / "params.yaml").write_text(f"xs: {list(range(200))}\n", encoding="utf-8")
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(SETUP), nbformat.v4.new_code_cell(RUN)]
    )
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    source, executed = workdir / "flow.ipynb", workdir / "flow.out.ipynb"
    nbformat.write(notebook, source)

    papermill.execute_notebook(
        str(source),
        str(executed),
        cwd=str(workdir),
        progress_bar=False,
        kernel_name="python3",
    )

    outputs = _outputs(nbformat.read(executed, as_version=4))
    assert len(outputs) <= 5  # the run's first lines, the display, the summary, the print
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    live = [h for h in html if "runnable-dask-progress" in h]
    assert len(live) == 1  # one display, updated in place
    (display,) = live
    text = re.sub(r"<[^>]+>", "", display)
    assert "wide" in text and "12 done, of 12 branches" in text  # the Parallel's bar, at its end
    assert "199 done, 1 failed, of 200 iterations" in text  # the map's bar, at its end
    assert "FAILED" in text and "squares.7.sq" in text and "seven is refused" in text
    assert "wide.b3.work" not in text and "squares.3.sq" not in text  # no line per item
    streams = "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")
    assert "squares.3.sq" not in streams and "wide.b3.work" not in streams
    assert "failed: " in streams  # the run's failure reached the cell
    plain = "".join(o["data"].get("text/plain", "") for o in outputs if "data" in o)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", plain)
    assert re.search(r"Run \S+ FAIL in ", plain)  # the summary, after the display
