"""Lower a plan to one Dask task graph: one task per step, keys named after the steps.

* A step is a task whose inputs are the tokens of every node that may route to it.
* A Parallel's branches are independent sub-graphs whose entry steps take the Parallel's
  own inputs; one join task per Parallel merges them (the fan-in).
* Each pipeline and branch ends in one task that records the terminal reached.
* The initial parameters are an argument of the first steps, not a task of their own:
  steps without dependencies are spread over the workers at once, where steps that
  share one dependency would all be queued on the worker that holds it.

Keys are ``<step_name>-<digits>`` so Dask's ``key_split`` groups the task stream and
progress bars by step name (``hello_python``), and the digits (a hash of the run id and
the internal name) keep runs apart on a shared cluster. User strings are never graph
arguments: names travel inside call objects, which Dask does not read as keys.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import replace
from typing import Any

from runnable_dask.plan import Branch, Plan
from runnable_dask.runtime.context import RunContext
from runnable_dask.runtime.node import EndCall, StepCall, run_branch_end, run_parallel, run_step
from runnable_dask.runtime.tokens import Token

Graph = dict[str, Any]


def lower(plan: Plan, ctx: RunContext, params: dict[str, Any]) -> tuple[Graph, str]:
    """The run's graph and the key of its last task (the root pipeline's end)."""
    graph: Graph = {}
    start = Token(target=plan.root.entry, params=params)
    end = _lower_branch(
        graph,
        plan.root,
        ctx,
        inputs=[start],
        accept=plan.root.entry,
        opens_branch=False,
    )
    return graph, end


def step_keys(plan: Plan, run_id: str) -> dict[str, str]:
    """Task key -> internal name of every step, to name the step behind a Dask error."""
    return {
        _key(node.name, run_id, node.internal_name): node.internal_name
        for branch, node in plan.nodes()
        if node.internal_name not in branch.terminals
    }


def _lower_branch(
    graph: Graph,
    branch: Branch,
    ctx: RunContext,
    inputs: list[str | Token],
    accept: str,
    opens_branch: bool,
) -> str:
    steps = [n for n in branch.nodes if n.internal_name not in branch.terminals]
    keys = {n.internal_name: _key(n.name, ctx.run_id, n.internal_name) for n in steps}
    routes: dict[str, list[str]] = defaultdict(list)
    for node in steps:
        for target in dict.fromkeys((node.on_success, node.on_failure)):
            routes[target].append(keys[node.internal_name])

    entry = branch.entry
    for node in steps:
        is_entry = node.internal_name == entry
        node_inputs: list[str | Token] = inputs if is_entry else [*routes[node.internal_name]]
        call = StepCall(
            node=replace(node, branches=()),
            accept=accept if is_entry else node.internal_name,
            opens_branch=opens_branch and is_entry,
        )
        if node.kind == "parallel":
            ends = [
                _lower_branch(graph, sub, ctx, node_inputs, call.accept, opens_branch=True)
                for sub in node.branches
            ]
            call = replace(
                call,
                node=replace(node, branches=tuple(replace(b, nodes=()) for b in node.branches)),
            )
            graph[keys[node.internal_name]] = (run_parallel, ctx, call, ends, list(node_inputs))
        else:
            graph[keys[node.internal_name]] = (run_step, ctx, call, *node_inputs)

    terminals = {name: (name, kind) for name, kind in branch.terminals.items()}
    end_inputs: list[str | Token] = list(
        dict.fromkeys(k for t in branch.terminals for k in routes.get(t, []))
    )
    if entry in branch.terminals:
        terminals[accept] = terminals[entry]
        end_inputs = list(inputs)
    end_call = EndCall(
        branch=branch.internal_name,
        terminals=terminals,
        opens_branch=opens_branch and entry in branch.terminals,
        is_root=not branch.internal_name,
    )
    end_key = _key(branch.key or "pipeline", ctx.run_id, branch.internal_name + "/end")
    graph[end_key] = (run_branch_end, ctx, end_call, *end_inputs)
    return end_key


def _key(name: str, run_id: str, internal_name: str) -> str:
    """``<name>-<digits>``: groups by name in the dashboard, unique per run and node."""
    digest = hashlib.blake2b(f"{run_id}/{internal_name}".encode(), digest_size=8).digest()
    return f"{name.replace('-', '_')}-{int.from_bytes(digest, 'big')}"
