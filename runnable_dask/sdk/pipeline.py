"""``Pipeline``: an ordered list of steps, checked as a whole when it is built."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import field_validator, model_validator

from runnable_dask.exceptions import PipelineDefinitionError
from runnable_dask.sdk.base import SdkModel
from runnable_dask.sdk.steps import BaseStep, Fail, Success

if TYPE_CHECKING:
    from runnable_dask.stores.runlog import RunLog

RESERVED_NAMES = ("success", "fail")
STEP_TYPES = (
    "PythonTask, ShellTask, NotebookTask, Stub, Parallel, Map, Conditional, Loop, Success or Fail"
)


class Pipeline(SdkModel):
    """Steps run in list order; the last one ends the pipeline with success.

    A step may end the pipeline early only as the last step (``terminate_with_success``,
    ``terminate_with_failure``, ``Success`` or ``Fail``). A failing step runs its
    ``on_failure`` pipeline if it has one, else the pipeline fails.

    Examples:
        >>> from runnable_dask import Pipeline, Stub
        >>> pipeline = Pipeline(steps=[Stub(name="first"), Stub(name="second")])
        >>> [step.name for step in pipeline.steps]
        ['first', 'second']
    """

    steps: list[Any]
    name: str = ""
    description: str = ""

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: list[Any]) -> list[Any]:
        if not value:
            raise ValueError("steps is empty; a pipeline needs at least one step")
        wrong = [
            f"steps[{i}] is a {type(step).__name__} ({step!r}), expected a {STEP_TYPES}"
            for i, step in enumerate(value)
            if not isinstance(step, (BaseStep, Success, Fail))
        ]
        if wrong:
            raise ValueError("; ".join(wrong))
        return value

    @model_validator(mode="after")
    def _well_formed(self) -> Pipeline:
        problems = list(_termination_problems(self.steps))
        seen: dict[str, str] = {}
        for step in (s for p in self.with_failure_pipelines() for s in p.steps):
            if step.name in RESERVED_NAMES and not isinstance(step, (Success, Fail)):
                problems.append(
                    f"{step.who}: the name {step.name!r} is reserved for the pipeline's "
                    f"end node; rename the step, e.g. {step.name + '_step'!r}"
                )
            if step.name in seen:
                problems.append(
                    f"{step.who}: the name {step.name!r} is used twice in one pipeline "
                    f"(with its on_failure pipelines); step names must be unique there"
                )
            seen[step.name] = step.who
        if problems:
            raise PipelineDefinitionError(problems)
        return self

    def with_failure_pipelines(self) -> list[Pipeline]:
        """This pipeline, then the on_failure pipelines of its steps (theirs too), each once.

        They share this pipeline's terminal nodes, so their step names must be unique
        together and their steps live beside this pipeline's in the run log.
        """
        ordered: list[Pipeline] = []
        pending = [self]
        while pending:
            current = pending.pop(0)
            if any(current is known for known in ordered):
                continue
            ordered.append(current)
            pending.extend(s.on_failure for s in current.steps if getattr(s, "on_failure", None))
        return ordered

    def execute(
        self,
        configuration_file: str = "",
        run_id: str = "",
        tag: str = "",
        parameters_file: str = "",
    ) -> RunLog:
        """Run the pipeline and return its run log; raise ``ExecutionFailedError`` on FAIL.

        Args:
            configuration_file: YAML configuration; ``RUNNABLE_CONFIGURATION_FILE`` wins.
            run_id: the run's id; else ``RUNNABLE_RUN_ID``; else a generated readable id.
            tag: a free label stored in the run log.
            parameters_file: YAML whose top-level keys are the initial parameters.
        """
        from runnable_dask.driver import execute

        return execute(
            self,
            configuration_file=configuration_file,
            run_id=run_id,
            tag=tag,
            parameters_file=parameters_file,
        )


def _termination_problems(steps: list[Any]) -> Iterator[str]:
    for step in steps[:-1]:
        if isinstance(step, (Success, Fail)):
            yield (
                f"{step.who} is not the last step; a {type(step).__name__} ends the "
                "pipeline, so move it to the end or remove the steps after it"
            )
        elif step.terminate_with_success or step.terminate_with_failure:
            flag = "success" if step.terminate_with_success else "failure"
            yield (
                f"{step.who} has terminate_with_{flag}=True but is not the last step; "
                "only the last step may end the pipeline, so move it or drop the flag"
            )
