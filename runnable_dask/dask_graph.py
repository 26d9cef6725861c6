"""The Dask graph a pipeline lowers to, as a Dask collection for Dask's own tools.

:func:`to_delayed` gives a ``Delayed`` over the part of the graph known before anything
runs (:meth:`runnable_dask.lower.Lowering.first`): one task per step, keyed
``<step name>-<token>``, one layer per branch (its span), so ``dask.visualize``,
``.dask.layers``, ``.dask.dependencies`` and ``.__dask_keys__()`` show what the scheduler
will receive first. A Map's iterations and a Loop's later iterations are not in it:
the driver lowers them once the list (or the loop's decision) is known, and they join
the running graph then. It is for looking at; ``Pipeline.execute()`` runs the pipeline.
"""

from __future__ import annotations

import queue
import tempfile
from collections import defaultdict
from typing import Any

from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

from runnable_dask.lower import Lowering
from runnable_dask.parameters import load_parameters
from runnable_dask.plan import build_plan
from runnable_dask.runtime.context import QueueReporter, RunContext
from runnable_dask.sdk import Pipeline

ROOT_LAYER = "pipeline"


def to_delayed(pipeline: Pipeline, parameters_file: str = "") -> Delayed:
    """The pipeline's first graph part as a ``Delayed`` whose key is the run's end.

    Example::

        graph = to_delayed(pipeline)
        graph.visualize("graph.svg")            # needs graphviz
        dict(graph.dask.layers)                 # one layer per branch
    """
    plan = build_plan(pipeline)
    context = RunContext(
        run_id="graph",
        catalog_location=tempfile.gettempdir(),
        reporter=QueueReporter(queue.SimpleQueue()),
    )
    part, end = Lowering(plan, context).first(load_parameters(parameters_file))
    layers: dict[str, dict[str, Any]] = defaultdict(dict)
    for key, task in part.tasks.items():
        span = part.spans[key]
        layers[span[-1] if span else ROOT_LAYER][key] = task  # a branch's internal name
    layer_of = {key: name for name, keys in layers.items() for key in keys}
    depends: dict[str, set[str]] = {name: set() for name in layers}
    for key, name in layer_of.items():
        for dep in part.deps[key]:
            if dep in layer_of and layer_of[dep] != name:
                depends[name].add(layer_of[dep])
    graph = HighLevelGraph(
        {name: MaterializedLayer(tasks) for name, tasks in layers.items()},
        depends,
        {key: {d for d in part.deps[key] if d in layer_of} for key in layer_of},
    )
    return Delayed(end, graph, layer=layer_of[end])


def to_mermaid(delayed: Delayed) -> str:
    """The graph's tasks as a Mermaid flowchart, a subgraph per layer (no graphviz)."""
    graph = delayed.dask
    ids: dict[object, str] = {}
    lines = ["flowchart TD"]
    for number, (name, layer) in enumerate(graph.layers.items()):
        lines.append(f'  subgraph layer{number}["{name}"]')
        for key in layer:
            ids[key] = f"k{len(ids)}"
            lines.append(f'    {ids[key]}["{key}"]')
        lines.append("  end")
    for key, deps in graph.key_dependencies.items():
        for dep in sorted(deps):
            lines.append(f"  {ids[dep]} --> {ids[key]}")
    return "\n".join(lines) + "\n"
