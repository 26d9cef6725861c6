"""Run a ``PythonTask``: bind, call, collect the returns."""

from __future__ import annotations

from runnable_dask.runtime.binding import bind, collect_returns
from runnable_dask.runtime.tokens import Param
from runnable_dask.sdk import PythonTask


def run_python(task: PythonTask, params: dict[str, Param]) -> dict[str, Param]:
    """Call the task's function with its parameters; raises what the function raises."""
    result = task.function(**bind(task.function, params))
    return collect_returns(result, task.returns, task.who)
