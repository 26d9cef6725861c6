"""Mocked runs: the whole pipeline is walked, and only the patched tasks run.

A way to test a pipeline's shape in a unit test: every unpatched task is recorded as a
success (``mock: true``) without running; a patched one runs its replacement, with the
step's own returns and catalog. Patches are named by step name or internal name.
"""

from __future__ import annotations

import importlib

from runnable_dask.config import MockedConfig, Patch, Section
from runnable_dask.exceptions import ConfigurationError
from runnable_dask.plan import Plan
from runnable_dask.sdk import BaseTask, NotebookTask, PythonTask, ShellTask, TaskReturn


def mock_patches(spec: Section, plan: Plan) -> dict[str, BaseTask] | None:
    """The replacement task of every patched step; None when the run is not mocked."""
    if not isinstance(spec.config, MockedConfig):
        return None
    tasks = {
        key: node
        for _, node in plan.nodes()
        if node.kind == "task"
        for key in (node.name, node.internal_name)
    }
    unknown = sorted(set(spec.config.patches) - tasks.keys())
    if unknown:
        raise ConfigurationError(
            f"mocked patches name {unknown}, which are not tasks of this pipeline; "
            f"tasks: {', '.join(sorted({n.name for n in tasks.values()}))}"
        )
    return {
        name: _replacement(tasks[name].step, patch) for name, patch in spec.config.patches.items()
    }


def _replacement(step: BaseTask, patch: Patch) -> BaseTask:
    update: dict[str, object] = {}
    if patch.returns is not None:
        update["returns"] = [
            TaskReturn(name=r) if isinstance(r, str) else TaskReturn.model_validate(r)
            for r in patch.returns
        ]
    if isinstance(step, PythonTask):
        update["function"] = _function(step, patch.command)
    elif isinstance(step, ShellTask):
        update["command"] = patch.command
    elif isinstance(step, NotebookTask):
        update["notebook"] = patch.command
    return step.model_copy(update=update)


def _function(step: PythonTask, path: str) -> object:
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigurationError(
            f"mocked patch for {step.who}: cannot import {path!r} ({exc}); give the dotted "
            "path of a function, e.g. 'my_project.fakes.train'"
        ) from None
