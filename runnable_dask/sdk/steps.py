"""The steps a pipeline is made of: tasks, ``Stub`` and the terminals (composites: see
:mod:`runnable_dask.sdk.composites`).

Each is a frozen pydantic model checked when it is built; none of them knows how it is
run (that is :mod:`runnable_dask.runtime`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from runnable_dask.exceptions import PipelineDefinitionError
from runnable_dask.sdk.base import SdkModel, check_name, subject
from runnable_dask.sdk.catalog import Catalog, escaping_patterns
from runnable_dask.sdk.resources import Resources, check_resources
from runnable_dask.sdk.returns import TaskReturn


class _Named(SdkModel):
    """A name that can stand in an internal name, and how messages call its owner."""

    name: str

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return check_name(value, "step name")

    @property
    def who(self) -> str:
        """How messages name this step: ``PythonTask 'train'``."""
        return subject(type(self).__name__, self.name)


class BaseStep(_Named):
    """What every step has: a name, how it may end the pipeline, and a failure path.

    ``resources`` (Dask worker resources, e.g. ``{"GPU": 1}``) send a task, or every task
    inside a composite, to workers that offer them (:mod:`runnable_dask.sdk.resources`).
    """

    terminate_with_success: bool = False
    terminate_with_failure: bool = False
    on_failure: Any = None
    resources: Resources | None = None

    @field_validator("resources", mode="before")
    @classmethod
    def _valid_resources(cls, value: Any) -> Any:
        return None if value is None else check_resources(value)

    @field_validator("on_failure")
    @classmethod
    def _pipeline_or_none(cls, value: Any) -> Any:
        from runnable_dask.sdk.pipeline import Pipeline

        if value is not None and not isinstance(value, Pipeline):
            raise ValueError(
                f"on_failure must be a Pipeline, got {type(value).__name__}; "
                "wrap the steps to run on failure: on_failure=Pipeline(steps=[...])"
            )
        return value

    @model_validator(mode="after")
    def _one_terminate_flag(self) -> BaseStep:
        if self.terminate_with_success and self.terminate_with_failure:
            raise ValueError(
                "terminate_with_success and terminate_with_failure are both set; "
                "a step ends the pipeline one way, so keep only one"
            )
        return self


_NUMBER_EXAMPLES = {
    "retries": "retries=3",
    "retry_delay": "retry_delay=2.0 (seconds)",
    "timeout": "timeout=600 (seconds an attempt may take)",
}


class BaseTask(BaseStep):
    """A step that runs user code: returns, catalog, secrets, retries, a time limit, caching.

    ``retries`` more attempts follow a failed one, ``retry_delay`` seconds apart; each
    attempt is recorded with its own number. An attempt still running after ``timeout``
    seconds is stopped and fails (:mod:`runnable_dask.runtime.deadline`). ``cache=True``
    skips the task when it succeeded before with the same code and inputs (see
    docs/caching.md).

    ``overrides`` is runnable's: it picks, per executor, a named variant of the
    executor's configuration for this step. Every step here runs through one executor
    configuration, so a pipeline that sets it is refused when built rather than run
    without what it asked for; ``resources`` and ``timeout`` say per step what such a
    variant usually gave.
    """

    returns: list[TaskReturn] = Field(default_factory=list)
    catalog: Catalog | None = None
    secrets: list[str] = Field(default_factory=list)
    overrides: dict[str, str] = Field(default_factory=dict)
    retries: int = Field(default=0, ge=0)
    retry_delay: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    cache: bool | None = None
    """Reuse the outputs of an earlier run with the same code and inputs; None: the
    configuration's ``cache.default``."""

    @field_validator("returns", mode="before")
    @classmethod
    def _bare_names_are_json(cls, value: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            raise ValueError(
                f"returns must be a list such as ['x', pickled('model')], got {value!r}"
            )
        normalised = []
        for item in value:
            if not isinstance(item, (str, TaskReturn)):
                raise ValueError(
                    f"returns item {item!r} is neither a name nor json()/pickled()/metric()"
                )
            normalised.append(TaskReturn(name=item) if isinstance(item, str) else item)
        return normalised

    @field_validator("retries", "retry_delay", "timeout", mode="before")
    @classmethod
    def _a_number_not_a_flag(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic reads True as 1: timeout=True would stop every attempt after a second.
        if isinstance(value, bool):
            example = _NUMBER_EXAMPLES[info.field_name or ""]
            raise ValueError(f"{value!r} is a flag, not a number; give one, e.g. {example}")
        return value

    @field_validator("overrides")
    @classmethod
    def _no_overrides(cls, value: dict[str, str]) -> dict[str, str]:
        if value:
            raise ValueError(
                f"overrides {value!r} would select a per-step variant of an executor's "
                "configuration, as in runnable; runnable_dask runs every step through one "
                "executor configuration, so it has none to select. Remove overrides; ask "
                "for what the variant gave with this step's own settings: worker "
                "resources={'GPU': 1}, timeout=seconds, retries=n"
            )
        return value

    @field_validator("returns")
    @classmethod
    def _unique_returns(cls, value: list[TaskReturn]) -> list[TaskReturn]:
        names = [r.name for r in value]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"returns names {repeated} more than once; each name once")
        return value

    @field_validator("catalog")
    @classmethod
    def _catalog_stays_inside(cls, value: Catalog | None, info: ValidationInfo) -> Catalog | None:
        problems = escaping_patterns(value) if value is not None else []
        if problems:
            who = subject(cls.__name__, info.data.get("name"))
            raise PipelineDefinitionError([f"{who}: {problem}" for problem in problems])
        return value


class PythonTask(BaseTask):
    """Runs a Python function; its arguments are bound by name from the parameters.

    Examples:
        >>> def add(x: int, y: int = 1):
        ...     return x + y
        >>> PythonTask(name="add", function=add, returns=["total"]).name
        'add'
    """

    function: Callable[..., Any]

    @field_validator("function", mode="before")
    @classmethod
    def _callable(cls, value: Any) -> Any:
        if not callable(value):
            raise ValueError(
                f"function must be callable, got {value!r} ({type(value).__name__}); "
                "pass the function itself (function=train), not the result of calling it"
            )
        return value


class ShellTask(BaseTask):
    """Runs a shell command; parameters arrive as environment variables.

    A returned name is read from the command's variables when it ends, so only
    ``json`` and ``metric`` returns make sense.
    """

    command: str

    @field_validator("command")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("command is empty; give the shell command to run")
        return value

    @field_validator("returns")
    @classmethod
    def _no_pickled(cls, value: list[TaskReturn]) -> list[TaskReturn]:
        objects = [r.name for r in value if r.kind == "object"]
        if objects:
            raise ValueError(
                f"returns {objects} are pickled(), but a shell command can only return "
                "text; use json('name') or metric('name'), or a PythonTask for objects"
            )
        return value


class NotebookTask(BaseTask):
    """Runs a Jupyter notebook through papermill.

    Parameters are injected into the cell tagged ``parameters``; returned names are read
    from the notebook's variables after it runs. ``optional_ploomber_args`` are passed to
    ``papermill.execute_notebook`` as keyword arguments (e.g. ``{"kernel_name": "python3"}``).
    """

    notebook: str
    optional_ploomber_args: dict[str, Any] = Field(default_factory=dict)

    @field_validator("notebook")
    @classmethod
    def _ipynb(cls, value: str) -> str:
        if not value.endswith(".ipynb"):
            raise ValueError(f"notebook {value!r} is not a .ipynb file; give the notebook's path")
        return value


class Stub(BaseStep):
    """Does nothing and succeeds; takes any extra keyword so a draft step can be stubbed."""

    model_config = ConfigDict(extra="allow")


class _Terminal(_Named):
    """A step that ends its pipeline; allowed only as the last step."""


class Success(_Terminal):
    """Ends the pipeline (or branch) with SUCCESS."""

    name: str = "success"


class Fail(_Terminal):
    """Ends the pipeline (or branch) with FAIL."""

    name: str = "fail"
