"""Run a ``PythonTask``: bind, call, collect the returns."""

from __future__ import annotations

from runnable_dask.runtime.binding import bind, collect_returns
from runnable_dask.runtime.tokens import Param
from runnable_dask.sdk import PythonTask


def run_python(task: PythonTask, params: dict[str, Param]) -> dict[str, Param]:
    """Call the task's function with its parameters; raises what the function raises.

    With a ``timeout`` it runs in a child interpreter, so that it can be stopped.
    """
    kwargs = bind(task.function, params)
    if task.timeout is not None:
        from runnable_dask.runtime.child import call_in_child

        result = call_in_child(task.function, kwargs)
    else:
        result = task.function(**kwargs)
    return collect_returns(result, task)
