"""Steps made of pipelines: ``Parallel``, ``Map``, ``Conditional`` and ``Loop``.

Each holds one or more branch pipelines and, like every step, may have ``on_failure``.
How they run (all branches at once, one branch per item, one chosen branch, one branch
again and again) is :mod:`runnable_dask.lower`'s business; here they are only checked.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from runnable_dask.sdk.base import check_name
from runnable_dask.sdk.steps import BaseStep


def _pipeline(value: Any, what: str) -> Any:
    from runnable_dask.sdk.pipeline import Pipeline

    if not isinstance(value, Pipeline):
        raise ValueError(
            f"{what} is a {type(value).__name__}, expected a Pipeline: wrap its steps, "
            "Pipeline(steps=[...])"
        )
    return value


def _branches(value: dict[str, Any]) -> dict[str, Any]:
    if not value:
        raise ValueError(
            "branches is empty; give at least one branch: branches={'a': Pipeline(...)}"
        )
    problems = []
    for key, branch in value.items():
        try:
            check_name(key, "branch name")
            _pipeline(branch, f"branch {key!r}")
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise ValueError("; ".join(problems))
    return value


def _parameter_name(value: str, what: str) -> str:
    if not value.isidentifier():
        raise ValueError(
            f"{what} {value!r} is not a parameter name; give the name of a parameter, "
            "e.g. 'learning_rates'"
        )
    return value


class Parallel(BaseStep):
    """Runs every branch at once; succeeds when all branches succeed.

    Each branch sees the parameters as they were when the step started; on success the
    values returned inside the branches are merged back in branch order.

    Examples:
        >>> from runnable_dask import Pipeline, Stub
        >>> branch = Pipeline(steps=[Stub(name="work")])
        >>> Parallel(name="fan", branches={"a": branch, "b": branch}).name
        'fan'
    """

    branches: dict[str, Any]

    @field_validator("branches")
    @classmethod
    def _valid_branches(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _branches(value)


class Map(BaseStep):
    """Runs ``branch`` once per item of the list parameter ``iterate_on``, all at once.

    The item is bound to the name ``iterate_as`` inside its branch. Every iteration runs
    even if another fails; any failure fails the step. On success each name returned
    inside the branch is reduced over the iterations, in list order, and becomes a
    parameter: by default the list of values; else ``reducer``, a ``"lambda *x: ..."``
    string or the dotted path of a function taking the values as positional arguments.
    An empty list runs no iteration and reduces every name the branch returns from no
    values: ``[]`` by default; a custom reducer is called with no arguments.

    ``batch_size`` runs that many items, one after another, in each Dask task instead of
    one task per item: for maps of many short items, where Dask's per-task cost
    dominates. Each item keeps its own record, retries and checkpoint; its branch must
    be tasks in a row without ``on_failure`` (what runs in a batch is known up front).

    Examples:
        >>> from runnable_dask import Pipeline, Stub
        >>> Map(name="sweep", branch=Pipeline(steps=[Stub(name="train")]),
        ...     iterate_on="alphas", iterate_as="alpha").iterate_as
        'alpha'
    """

    branch: Any
    iterate_on: str
    iterate_as: str
    reducer: str | None = None
    batch_size: int | None = None

    @field_validator("branch")
    @classmethod
    def _valid_branch(cls, value: Any) -> Any:
        return _pipeline(value, "branch")

    @field_validator("iterate_on", "iterate_as")
    @classmethod
    def _names(cls, value: str) -> str:
        return _parameter_name(value, "the name")

    @field_validator("reducer")
    @classmethod
    def _valid_reducer(cls, value: str | None) -> str | None:
        if value is None:
            return value
        text = value.strip()
        if text.startswith("lambda"):
            try:
                compile(text, "<reducer>", "eval")
            except SyntaxError as exc:
                raise ValueError(
                    f"reducer {value!r} is not a valid lambda ({exc.msg}); "
                    "write it as 'lambda *x: max(x)'"
                ) from None
            return text
        parts = text.split(".")
        if len(parts) < 2 or not all(p.isidentifier() for p in parts):
            raise ValueError(
                f"reducer {value!r} is neither a 'lambda *x: ...' string nor a dotted path "
                "to a function such as 'my_project.reducers.best'"
            )
        return text

    @field_validator("batch_size", mode="before")
    @classmethod
    def _valid_batch_size(cls, value: Any) -> Any:
        if value is None or (type(value) is int and value >= 1):
            return value
        raise ValueError(
            f"{value!r} is not a whole number of at least 1; give the items per Dask task "
            "(e.g. batch_size=100), or leave it out for one task per item"
        )

    @model_validator(mode="after")
    def _batchable(self) -> Map:
        if self.batch_size is None:
            return self
        from runnable_dask.sdk.steps import BaseTask, Fail, Stub, Success

        steps = self.branch.steps
        problems = [
            f"{step.who} is a {type(step).__name__}"
            for step in steps
            if not isinstance(step, (BaseTask, Stub, Success, Fail))
        ] + [f"{step.who} has on_failure" for step in steps if getattr(step, "on_failure", None)]
        if problems:
            raise ValueError(
                f"batch_size={self.batch_size} needs a branch of tasks in "
                f"a row without on_failure, but {'; '.join(problems)}; leave batch_size out, "
                "or move that logic out of the mapped branch"
            )
        return self


class Conditional(BaseStep):
    """Runs only the branch whose key equals ``str()`` of the parameter ``parameter``.

    A value that matches no branch fails the step; the message lists the branch keys.
    The branch's returned values merge back when it succeeds.
    """

    parameter: str
    branches: dict[str, Any]

    @field_validator("parameter")
    @classmethod
    def _name(cls, value: str) -> str:
        return _parameter_name(value, "parameter")

    @field_validator("branches")
    @classmethod
    def _valid_branches(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _branches(value)


class Loop(BaseStep):
    """Runs ``branch`` for index 0, 1, ... until a boolean parameter says stop.

    The index is given to each iteration as the parameter and environment variable
    ``index_as``. The loop stops with success when the parameter ``break_on`` is true
    after an iteration or when ``max_iterations`` iterations have run, and with failure
    when an iteration fails. Parameters carry from one iteration to the next and, at
    the end, back to the enclosing pipeline.
    """

    branch: Any
    max_iterations: int = Field(gt=0)
    break_on: str
    index_as: str

    @field_validator("branch")
    @classmethod
    def _valid_branch(cls, value: Any) -> Any:
        return _pipeline(value, "branch")

    @field_validator("break_on", "index_as")
    @classmethod
    def _names(cls, value: str) -> str:
        return _parameter_name(value, "the name")
