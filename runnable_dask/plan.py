"""The user's pipeline tree turned into an immutable plan: internal names, routes, a hash.

Every step becomes a :class:`Node` with its internal name (``parallel_step.branch1.hello``)
and the internal names it goes to on success and on failure. Each pipeline and branch
becomes a :class:`Branch` holding its nodes (the steps of its on_failure pipelines
included) and its terminal nodes. No Dask here: :mod:`runnable_dask.lower` reads the plan.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from runnable_dask.compact import Compact
from runnable_dask.pickled_once import Reduced, reduce_once
from runnable_dask.sdk import (
    BaseTask,
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
)

NodeKind = Literal["task", "stub", "parallel", "map", "conditional", "loop", "success", "fail"]
DEFAULT_SUCCESS = "success"
DEFAULT_FAIL = "fail"
PLACEHOLDER = "%"
"""Stands in an internal name for a map item or loop index (step names cannot hold it)."""


def fill(template: str, items: tuple[str, ...]) -> str:
    """The internal name of one instance: ``m.%.train`` with ``("0.1",)`` is ``m.0.1.train``.

    Only as many items as the template has placeholders are used, so the items of a
    step's instance also name its enclosing branches and composites.
    """
    if PLACEHOLDER not in template:
        return template
    head, rest = _parts(template)
    if len(rest) == 1 and items:  # one map or loop above: most names, a step's each time
        return head + items[0] + rest[0]
    out = [head]
    for item, part in zip(items, rest, strict=False):
        out.extend((item, part))
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def _parts(template: str) -> tuple[str, tuple[str, ...]]:
    """A template split at its placeholders, once: splitting was two thirds of a fill."""
    head, *rest = template.split(PLACEHOLDER)
    return head, tuple(rest)


@dataclass(frozen=True, slots=True)
class Node(Compact):
    """One step of the plan, terminals included."""

    internal_name: str
    name: str
    kind: NodeKind
    step: Any = None
    on_success: str = ""
    on_failure: str = ""
    branches: tuple[Branch, ...] = ()
    cache: str = ""
    """A cached task's identity (see :mod:`runnable_dask.runtime.step_cache`), else empty."""

    def __reduce__(self) -> Reduced:
        # Every item of a map carries the same node, with the step's definition inside:
        # its bytes are made once per process (see runnable_dask.pickled_once).
        return reduce_once(self)


@dataclass(frozen=True, slots=True)
class Branch(Compact):
    """A pipeline or a branch of a composite: its nodes (terminals last) and its entry.

    ``entry`` is the internal name of the first step, which may be a terminal
    (``Pipeline(steps=[Fail()])``); ``terminals`` maps each terminal to its kind.
    """

    internal_name: str
    key: str
    nodes: tuple[Node, ...]
    entry: str
    terminals: dict[str, NodeKind] = field(default_factory=dict)

    def walk(self) -> Iterator[tuple[Branch, Node]]:
        """Every (branch, node) pair below and including this branch, depth first."""
        for node in self.nodes:
            yield self, node
            for branch in node.branches:
                yield from branch.walk()


@dataclass(frozen=True, slots=True)
class Plan:
    """The whole run: the root pipeline and a stable hash of its definition."""

    root: Branch
    dag_hash: str

    def nodes(self) -> Iterator[tuple[Branch, Node]]:
        return self.root.walk()


def build_plan(pipeline: Pipeline, identify: Callable[[Any], str] | None = None) -> Plan:
    """Name, route and hash a pipeline; refuse names that clash with internal ones.

    ``identify`` gives each cached task its cache identity (``""``: not cached).
    """
    root = _plan_branch(pipeline, internal_name="", key="", identify=identify)
    description = [_describe(branch, node) for branch, node in root.walk()]
    digest = hashlib.sha1(json.dumps(description, sort_keys=True).encode()).hexdigest()
    return Plan(root=root, dag_hash=digest)


def _plan_branch(
    pipeline: Pipeline, internal_name: str, key: str, identify: Callable[[Any], str] | None
) -> Branch:
    prefix = f"{internal_name}." if internal_name else ""
    pipelines = pipeline.with_failure_pipelines()
    success = prefix + _terminal_name(pipeline, Success, DEFAULT_SUCCESS)
    fail = prefix + DEFAULT_FAIL
    entry_of = {id(p): prefix + p.steps[0].name for p in pipelines}

    nodes: list[Node] = []
    terminals: dict[str, NodeKind] = {success: "success", fail: "fail"}
    for current in pipelines:
        steps = current.steps
        for index, step in enumerate(steps):
            own = prefix + step.name
            if isinstance(step, (Success, Fail)):
                terminals[own] = "success" if isinstance(step, Success) else "fail"
                continue
            if index + 1 < len(steps):
                on_success = prefix + steps[index + 1].name
            else:
                on_success = fail if step.terminate_with_failure else success
            on_failure = entry_of[id(step.on_failure)] if step.on_failure is not None else fail
            nodes.append(
                Node(
                    internal_name=own,
                    name=step.name,
                    kind=_kind(step),
                    step=step,
                    on_success=on_success,
                    on_failure=on_failure,
                    branches=_sub_branches(step, own, identify),
                    cache=identify(step) if identify is not None else "",
                )
            )
    for name, kind in terminals.items():
        nodes.append(Node(internal_name=name, name=name.rsplit(".", 1)[-1], kind=kind))
    return Branch(
        internal_name=internal_name,
        key=key,
        nodes=tuple(nodes),
        entry=entry_of[id(pipeline)],
        terminals=terminals,
    )


def _sub_branches(step: Any, own: str, identify: Callable[[Any], str] | None) -> tuple[Branch, ...]:
    """A composite's branches; a Map or Loop has one, a template for every instance."""
    if isinstance(step, (Map, Loop)):
        return (_plan_branch(step.branch, f"{own}.{PLACEHOLDER}", PLACEHOLDER, identify),)
    branches = step.branches if isinstance(step, (Parallel, Conditional)) else {}
    return tuple(_plan_branch(sub, f"{own}.{key}", key, identify) for key, sub in branches.items())


def _terminal_name(pipeline: Pipeline, kind: type[Any], default: str) -> str:
    last: Any = pipeline.steps[-1]
    return last.name if isinstance(last, kind) else default


def _kind(step: Any) -> NodeKind:
    for composite, kind in _COMPOSITE_KINDS.items():
        if isinstance(step, composite):
            return kind
    if isinstance(step, Stub):
        return "stub"
    return "task"


_COMPOSITE_KINDS: dict[type, NodeKind] = {
    Parallel: "parallel",
    Map: "map",
    Conditional: "conditional",
    Loop: "loop",
}
_SHAPE_FIELDS = (
    "iterate_on",
    "iterate_as",
    "reducer",
    "parameter",
    "max_iterations",
    "break_on",
    "index_as",
)


def function_identity(function: Any) -> str:
    """``module.qualname``, the same however the pipeline's file was started.

    A function defined in a script run as ``python flow.py`` lives in ``__main__``;
    ``runnable-dask retry`` imports that file as the module ``flow``. Named by its file's
    stem both ways, the step keeps its identity, and the retry its dag hash.
    """
    module = getattr(function, "__module__", None) or ""
    if module == "__main__":
        script = getattr(sys.modules.get("__main__"), "__file__", None)
        module = Path(script).stem if script else module
    return f"{module}.{getattr(function, '__qualname__', '')}"


def _describe(branch: Branch, node: Node) -> dict[str, Any]:
    """What the dag hash covers: the shape and the code each step points to."""
    step = node.step
    detail: dict[str, Any] = {}
    if isinstance(step, PythonTask):
        detail["function"] = function_identity(step.function)
    elif isinstance(step, ShellTask):
        detail["command"] = step.command
    elif isinstance(step, NotebookTask):
        detail["notebook"] = step.notebook
    if isinstance(step, BaseTask):
        detail["returns"] = [(r.name, r.kind) for r in step.returns]
        detail["catalog"] = step.catalog.model_dump() if step.catalog else None
    if step is not None:
        # The model's stored values, not hasattr: a missing attribute of a pydantic model
        # raises inside its __getattr__, which cost more than planning the step.
        values = {**vars(step), **(step.model_extra or {})}
        detail.update((name, values[name]) for name in _SHAPE_FIELDS if name in values)
    return {
        "branch": branch.internal_name,
        "node": node.internal_name,
        "kind": node.kind,
        "on_success": node.on_success,
        "on_failure": node.on_failure,
        **detail,
    }


def secret_names(plan: Plan) -> frozenset[str]:
    """The names of every secret a task of the plan asks for."""
    return frozenset(name for _, node in plan.nodes() for name in getattr(node.step, "secrets", []))
