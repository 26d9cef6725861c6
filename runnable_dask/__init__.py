"""runnable_dask: runnable's pipeline SDK, run as one Dask task graph.

Change ``from runnable import ...`` to ``from runnable_dask import ...`` and the pipeline
runs on Dask: branches and nested branches at once, on a laptop or a cluster.
"""

from runnable_dask import _excepthook, _exit
from runnable_dask._paths import make_working_folder_importable
from runnable_dask.exceptions import (
    ConfigurationError,
    ExecutionFailedError,
    PipelineDefinitionError,
    RunnableDaskError,
)
from runnable_dask.sdk import (
    Catalog,
    Conditional,
    Fail,
    Loop,
    Map,
    NotebookTask,
    Parallel,
    Pipeline,
    PythonTask,
    ShellTask,
    Stub,
    Success,
    json,
    metric,
    pickled,
)

make_working_folder_importable()
_excepthook.install()
_exit.install()

__all__ = [
    "Catalog",
    "Conditional",
    "ConfigurationError",
    "ExecutionFailedError",
    "Fail",
    "Loop",
    "Map",
    "NotebookTask",
    "Parallel",
    "Pipeline",
    "PipelineDefinitionError",
    "PythonTask",
    "RunnableDaskError",
    "ShellTask",
    "Stub",
    "Success",
    "json",
    "metric",
    "pickled",
]
