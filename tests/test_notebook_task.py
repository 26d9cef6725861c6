"""NotebookTask through papermill: parameters in, names back out, executed copy kept.

Each test starts a real kernel (about a second), so these are few and each checks much.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest

from runnable_dask import (
    ExecutionFailedError,
    NotebookTask,
    Pipeline,
    PythonTask,
    metric,
    pickled,
)

Run = Callable[..., Any]


def write_notebook(path: Path, parameters: str, *cells: str) -> str:
    """A notebook with a ``parameters`` cell of defaults, then ``cells``."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    defaults = nbformat.v4.new_code_cell(parameters)
    defaults.metadata["tags"] = ["parameters"]
    notebook.cells = [defaults, *(nbformat.v4.new_code_cell(c) for c in cells)]
    nbformat.write(notebook, str(path))
    return path.name


def test_parameters_in_returns_out_and_the_executed_notebook_kept(run: Run, workdir: Path) -> None:
    notebook = write_notebook(
        workdir / "analysis.ipynb",
        "count = 0\nlabel = 'default'",
        "print(f'count is {count}, label is {label}')",
        "doubled = count * 2\nscore = 0.75\nshape = {'label': label, 'rows': count}",
    )
    received: dict[str, Any] = {}

    def produce() -> tuple[int, str]:
        return 21, "from python"

    def consume(doubled: int, shape: dict, score: float) -> None:
        received.update(doubled=doubled, shape=shape, score=score)

    pipeline = Pipeline(
        steps=[
            PythonTask(name="produce", function=produce, returns=["count", "label"]),
            NotebookTask(
                name="analyse",
                notebook=notebook,
                returns=["doubled", pickled("shape"), metric("score")],
            ),
            PythonTask(name="consume", function=consume),
        ]
    )
    run_log = run(pipeline)
    assert received == {"doubled": 42, "shape": {"label": "from python", "rows": 21}, "score": 0.75}
    attempt = run_log.steps["analyse"].attempts[0]
    assert attempt.user_defined_metrics == {"score": 0.75}
    assert attempt.output_parameters["shape"].value == "shape"  # pickled: named only

    stored = workdir / ".catalog" / "test-run" / "analysis-analyse_out.ipynb"
    executed = nbformat.read(str(stored), as_version=4)
    tags = [cell.metadata.get("tags", []) for cell in executed.cells]
    assert tags == [["parameters"], ["injected-parameters"], [], []]
    injected = executed.cells[1].source
    assert "count = 21" in injected
    assert 'label = "from python"' in injected
    printed = "".join(out.get("text", "") for out in executed.cells[2].outputs)
    assert printed == "count is 21, label is from python\n"
    # The user's own notebook is left as it was.
    assert len(nbformat.read(notebook, as_version=4).cells) == 3


def test_a_failing_cell_fails_the_step_with_the_error(
    run: Run, workdir: Path, stored_run_log: Callable[..., Any]
) -> None:
    notebook = write_notebook(
        workdir / "broken.ipynb",
        "limit = 1",
        "value = 10",
        "if value > limit:\n    raise ValueError(f'value {value} is over the limit {limit}')",
        "never = True",
    )
    task = NotebookTask(name="check", notebook=notebook, returns=["never"])
    with pytest.raises(ExecutionFailedError, match="check: NotebookError"):
        run(Pipeline(steps=[task]))
    message = stored_run_log().steps["check"].message
    assert "ValueError" in message
    assert "value 10 is over the limit 1" in message
    executed = workdir / ".catalog" / "test-run" / "broken-check_out.ipynb"
    assert executed.exists(), "the executed notebook is kept after a failure too"


def test_a_missing_notebook_fails_the_step_naming_it(run: Run) -> None:
    task = NotebookTask(name="ghost", notebook="not_here.ipynb")
    with pytest.raises(ExecutionFailedError, match=r"notebook 'not_here\.ipynb' does not exist"):
        run(Pipeline(steps=[task]))


def _without_kernelspec(path: Path) -> str:
    name = write_notebook(path, "x = 1", "y = x + 1")
    notebook = nbformat.read(str(path), as_version=4)
    del notebook.metadata["kernelspec"]
    nbformat.write(notebook, str(path))
    return name


def test_a_notebook_without_a_kernelspec_fails_naming_the_step_and_the_fix(
    run: Run, workdir: Path
) -> None:
    task = NotebookTask(name="explore", notebook=_without_kernelspec(workdir / "bare.ipynb"))
    with pytest.raises(
        ExecutionFailedError,
        match=r"explore: NotebookKernelError: NotebookTask 'explore': notebook 'bare\.ipynb' "
        r"names no kernel \(its metadata has no kernelspec\); choose a kernel in Jupyter and "
        r"save the notebook, or name one in the step: "
        r"optional_ploomber_args=\{'kernel_name': 'python3'\}",
    ):
        run(Pipeline(steps=[task]))


def test_a_kernel_named_by_the_step_runs_a_notebook_without_a_kernelspec(
    run: Run, workdir: Path
) -> None:
    task = NotebookTask(
        name="explore",
        notebook=_without_kernelspec(workdir / "bare.ipynb"),
        optional_ploomber_args={"kernel_name": "python3"},
        returns=["y"],
    )
    assert run(Pipeline(steps=[task])).parameters["y"].value == 2


def test_a_kernel_that_is_not_installed_fails_the_step_naming_it(run: Run, workdir: Path) -> None:
    notebook = write_notebook(workdir / "other.ipynb", "x = 1")
    task = NotebookTask(
        name="other", notebook=notebook, optional_ploomber_args={"kernel_name": "no-such-kernel"}
    )
    with pytest.raises(
        ExecutionFailedError,
        match=r"NotebookTask 'other': notebook 'other\.ipynb' runs in kernel 'no-such-kernel', "
        "which is not installed",
    ) as failed:
        run(Pipeline(steps=[task]))
    assert "installed: python3" in str(failed.value)
