"""The run log's schema: runnable's layout and field names, as pydantic models.

One JSON document per run: ``{run_id, dag_hash, tag, status, steps, parameters,
run_config}``. Steps are keyed by internal name; a composite step holds its branches,
each with its own steps and final parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from runnable_dask.sdk.returns import ReturnKind
from runnable_dask.stores.packed import PackedBranches, unpacked

Status = Literal["CREATED", "PROCESSING", "SUCCESS", "FAIL"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)  # built when first used


class _Tree(_Record):
    """A record holding steps: its packed maps, if any, are read back for a dump.

    Pydantic serialises a map's packed branches (a dict holding JSON) only through
    these two, which unpack them first; the run-log store writes them as they are
    (:func:`runnable_dask.stores.packed.dump_run_log`).
    """

    def model_dump_json(self, *args: Any, **kwargs: Any) -> str:
        with unpacked(self):
            return super().model_dump_json(*args, **kwargs)

    def model_dump(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        with unpacked(self):
            return super().model_dump(*args, **kwargs)


class ParameterRecord(_Record):
    """A parameter's value as recorded; pickled (``object``) values are named, not stored."""

    kind: ReturnKind
    value: Any
    description: str = ""


class DataCatalogRecord(_Record):
    """A file a step got from or put into the catalog."""

    name: str
    data_hash: str = ""
    catalog_relative_path: str = ""
    catalog_handler_location: str = ""
    stage: Literal["get", "put"]


class Attempt(_Record):
    """One try at running a step."""

    attempt_number: int = 1
    start_time: str = ""
    end_time: str = ""
    status: Status = "PROCESSING"
    message: str = ""
    input_parameters: dict[str, ParameterRecord] = Field(default_factory=dict)
    output_parameters: dict[str, ParameterRecord] = Field(default_factory=dict)
    user_defined_metrics: dict[str, Any] = Field(default_factory=dict)
    retry_indicator: str = ""
    code_identities: list[dict[str, Any]] = Field(default_factory=list)
    cached_from: str | None = None
    """The run whose cached outputs this attempt reused (the step did not run)."""


class BranchLog(_Tree):
    """One branch of a composite step."""

    internal_name: str
    status: Status = "PROCESSING"
    steps: dict[str, StepLog] = Field(default_factory=dict)
    parameters: dict[str, ParameterRecord] = Field(default_factory=dict)


class StepLog(_Tree):
    """One step: its attempts (tasks) or its branches (composites)."""

    name: str
    internal_name: str
    status: Status = "PROCESSING"
    step_type: str = "task"
    message: str = ""
    mock: bool = False
    attempts: list[Attempt] = Field(default_factory=list)
    branches: dict[str, BranchLog] = Field(default_factory=dict)
    data_catalog: list[DataCatalogRecord] = Field(default_factory=list)


class RunLog(_Tree):
    """Everything recorded about one run; returned by ``Pipeline.execute``."""

    run_id: str
    dag_hash: str = ""
    tag: str = ""
    status: Status = "CREATED"
    steps: dict[str, StepLog] = Field(default_factory=dict)
    parameters: dict[str, ParameterRecord] = Field(default_factory=dict)
    run_config: dict[str, Any] = Field(default_factory=dict)

    def walk(self) -> Iterator[StepLog]:
        """Every step, branches included, depth first in recorded order; a map's packed
        branches are read one at a time (a list of a map's 100,000 items, read back, held
        the run's every record at once: 1.2 GB to list its steps)."""
        return _walk(self.steps.values())

    def _walk_failures(self) -> Iterator[StepLog]:
        """As :meth:`walk`, skipping packed branches with no failure inside (unread)."""
        pending = list(reversed(self.steps.values()))
        while pending:
            step = pending.pop()
            yield step
            if step.branches:
                children = [s for b in _may_have_failed(step) for s in b.steps.values()]
                pending.extend(reversed(children))

    def step(self, internal_name: str) -> StepLog:
        """The step with this internal name, at any depth; of a map's packed branches,
        only those whose name begins the step's are read."""
        pending = list(reversed(self.steps.values()))
        while pending:
            step = pending.pop()
            if step.internal_name == internal_name:
                return step
            branches = step.branches
            if not branches:
                continue
            if isinstance(branches, PackedBranches):
                chosen = [branches[n] for n in branches if internal_name.startswith(f"{n}.")]
            else:
                chosen = list(branches.values())
            pending.extend(reversed([s for b in chosen for s in b.steps.values()]))
        raise KeyError(f"no step {internal_name!r} in run {self.run_id!r}")

    def failed_steps(self) -> list[StepLog]:
        """Every failed step with no failed step inside it, in recorded order: the tasks
        that failed, and composites that failed by themselves (a map whose list was
        missing), not the composites above failed tasks nor the fail terminals."""
        found = []
        for step in self._walk_failures():
            if step.status != "FAIL" or step.step_type == "fail":
                continue
            inside = (s for b in _may_have_failed(step) for s in b.steps.values())
            if not any(s.status == "FAIL" for s in inside):
                found.append(step)
        return found

    def _repr_html_(self) -> str:
        """A readable summary in Jupyter (see runnable_dask.run_html)."""
        from runnable_dask.run_html import run_log_html

        return run_log_html(self)

    def failures(self) -> list[tuple[str, str]]:
        """(internal name, message) of every failed step, in recorded order."""
        return [(s.internal_name, s.message) for s in self.failed_steps()]


def _may_have_failed(step: StepLog) -> Iterator[BranchLog]:
    """The step's branches, but of a map's packed ones only those with a failure inside:
    the others stay unread (a failed map of 100,000 items listed its one failure after
    reading 77,000 branches, in 1.3 s)."""
    branches = step.branches
    if isinstance(branches, PackedBranches):
        return branches.with_failures()
    return iter(branches.values())


def _walk(steps: Iterable[StepLog]) -> Iterator[StepLog]:
    for step in steps:
        yield step
        for branch in step.branches.values():
            yield from _walk(branch.steps.values())
