"""The SDK users write pipelines with: pydantic models, no Dask and no I/O."""

from runnable_dask.sdk.catalog import Catalog
from runnable_dask.sdk.pipeline import Pipeline
from runnable_dask.sdk.returns import TaskReturn, json, metric, pickled
from runnable_dask.sdk.steps import (
    BaseStep,
    BaseTask,
    Fail,
    NotebookTask,
    Parallel,
    PythonTask,
    ShellTask,
    Stub,
    Success,
)

__all__ = [
    "BaseStep",
    "BaseTask",
    "Catalog",
    "Fail",
    "NotebookTask",
    "Parallel",
    "Pipeline",
    "PythonTask",
    "ShellTask",
    "Stub",
    "Success",
    "TaskReturn",
    "json",
    "metric",
    "pickled",
]
