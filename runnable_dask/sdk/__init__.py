"""The SDK users write pipelines with: pydantic models, no Dask and no I/O."""

from runnable_dask.sdk.catalog import Catalog
from runnable_dask.sdk.composites import Conditional, Loop, Map, Parallel
from runnable_dask.sdk.pipeline import Pipeline
from runnable_dask.sdk.returns import TaskReturn, json, metric, pickled
from runnable_dask.sdk.steps import (
    BaseStep,
    BaseTask,
    Fail,
    NotebookTask,
    PythonTask,
    ShellTask,
    Stub,
    Success,
)

__all__ = [
    "BaseStep",
    "BaseTask",
    "Catalog",
    "Conditional",
    "Fail",
    "Loop",
    "Map",
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
