"""Lower a plan to Dask tasks: one task per step, keys named after the steps.

* A step is a task whose inputs are the tokens of every node that may route to it.
* A Parallel's branches are independent sub-graphs whose entry steps take the Parallel's
  own inputs; one join task per Parallel merges them (the fan-in). A Conditional is the
  same with a start task that sends control to one branch only.
* A Map or Loop is a *frontier*: its start task is lowered at once, its iterations only
  when the driver knows the items (or whether the loop goes on). Until then the tasks
  after it wait in the driver, never in a worker. :class:`Lowering` produces the first
  part and then each expansion as a :class:`GraphPart`.
* Each pipeline and branch instance ends in one task that records the terminal reached.
* The initial parameters are an argument of the first steps, not a task of their own:
  steps without dependencies are spread over the workers at once, where steps that
  share one dependency would all be queued on the worker that holds it.

Keys are ``<step_name>-<digits>`` so Dask's ``key_split`` groups the task stream and
progress bars by step name (``hello_python``, every iteration of a map's ``train``
together), and the digits (a hash of the run id and the instance's internal name) keep
runs apart on a shared cluster. User strings are never graph arguments: names travel
inside call objects, which Dask does not read as keys.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from runnable_dask.plan import PLACEHOLDER, Branch, Node, Plan, fill
from runnable_dask.runtime.batch import BatchCall, BatchItem, run_batch
from runnable_dask.runtime.composites import (
    loop_goes_on,
    loop_next,
    map_items,
    passthrough,
    run_batched_map_join,
    run_conditional,
    run_conditional_join,
    run_map_join,
    run_probe,
)
from runnable_dask.runtime.context import RunContext
from runnable_dask.runtime.node import (
    EndCall,
    StepCall,
    run_branch_end,
    run_parallel,
    run_step,
    run_step_and_end,
)
from runnable_dask.runtime.tokens import Bind, Entry, ParamKind, Token
from runnable_dask.sdk.resources import Resources, merge

Input = str | Token
Span = tuple[str, ...]

BATCHES_PER_PART = 100
"""A batched map's tasks lowered and sent to the scheduler at a time (10,000 items in
batches of 100): the driver never holds a 100,000-item map's calls, nor their pickles,
all at once. Its join comes in the first part and waits in the driver for the last."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a branch instance sits: the items that fill its placeholders, the lists of
    enclosing maps (kept out of per-item records), the indexes of enclosing loops (set
    as environment variables), the span that groups its tasks in the dashboard, and the
    worker resources its enclosing composites ask for."""

    items: tuple[str, ...] = ()
    hidden: frozenset[str] = frozenset()
    indexes: tuple[str, ...] = ()
    span: Span = ()
    resources: Resources = field(default_factory=dict)

    def inside(self, node: Node) -> Scope:
        """The scope of a composite's branches: its resources added to the enclosing ones."""
        own = node.step.resources if node.step is not None else None
        return replace(self, resources=merge(self.resources, own)) if own else self

    def restrict(self, part: GraphPart, key: str, node: Node) -> None:
        """A task step's worker resources, its own over its composites' (none for stubs)."""
        if node.kind == "task":
            resources = merge(self.resources, node.step.resources)
            if resources:
                part.resources[key] = resources

    def call(self, node: Node, entry: Entry, forwards: bool = False) -> StepCall:
        return StepCall(
            node=_light(node),
            entry=entry,
            items=self.items,
            hidden=self.hidden,
            indexes=self.indexes,
            forwards=forwards,
        )


@dataclass(frozen=True, slots=True)
class Frontier:
    """A Map or Loop whose next part is lowered once the value of its ``info`` is known.

    ``token`` is the key whose token enters that part; ``join`` is the key the rest of
    the graph waits for (the step's own key); ``index`` is a loop's next iteration.
    """

    kind: Literal["map", "loop"]
    node: Node
    call: StepCall
    scope: Scope
    token: str
    join: str
    index: int = 0


@dataclass
class GraphPart:
    """Tasks to add to the run, the keys each reads, their spans, the frontiers they
    open, and the worker resources of the tasks that ask for some."""

    tasks: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    deps: dict[str, tuple[str, ...]] = field(default_factory=dict)
    spans: dict[str, Span] = field(default_factory=dict)
    frontiers: dict[str, Frontier] = field(default_factory=dict)
    resources: dict[str, Resources] = field(default_factory=dict)

    def add(self, key: str, task: tuple[Any, ...], span: Span, *inputs: Input | list[str]) -> str:
        keys: list[str] = []
        for item in inputs:
            if isinstance(item, list):
                keys.extend(item)
            elif isinstance(item, str):
                keys.append(item)
        self.tasks[key] = task
        self.deps[key] = tuple(dict.fromkeys(keys))
        self.spans[key] = span
        return key


class Lowering:
    """Lowers one run's plan: the first part, then each frontier's expansion."""

    def __init__(self, plan: Plan, ctx: RunContext) -> None:
        self.plan = plan
        self.ctx = ctx

    def first(self, params: dict[str, Any]) -> tuple[GraphPart, str]:
        """The part of the graph known before anything runs, and the root's end key."""
        part = GraphPart()
        root = self.plan.root
        start = Token(target=root.entry, params=params)
        end = self._branch(part, root, [start], Entry(root.entry), Scope(), "pipeline")
        return part, end

    def expand(self, frontier: Frontier, value: Any) -> Iterator[GraphPart]:
        """The next part of a Map (``value``: the items' text) or Loop (whether it goes on);
        a batched map's in several parts, each made once the one before is submitted.

        All iterations of a map share one span, named after the map; each loop
        iteration is a span of its own.
        """
        part = GraphPart()
        node, call, scope = frontier.node, frontier.call, frontier.scope
        ctx, token = self.ctx, frontier.token
        if frontier.kind == "map":
            step = node.step
            inner = replace(
                scope.inside(node),
                hidden=scope.hidden | {step.iterate_on},
                span=(*scope.span, call.internal_name),
            )
            returned = () if value else _returned(node)
            if step.batch_size and _linear(node.branches[0], _steps(node.branches[0])):
                items: tuple[str, ...] = value or ()
                firsts = range(0, len(items), step.batch_size)
                batches = [self._batch_key(frontier, first) for first in firsts]
                batched = (run_batched_map_join, ctx, call, batches, token, returned)
                part.add(frontier.join, batched, scope.span, batches, token)
                for at in range(0, len(firsts), BATCHES_PER_PART):
                    self._batches(part, frontier, inner, items, firsts[at : at + BATCHES_PER_PART])
                    yield part
                    part = GraphPart()
                if not firsts:
                    yield part
                return
            ends = [
                self._branch(
                    part,
                    node.branches[0],
                    [token],
                    self._item_entry(node, index),
                    replace(inner, items=(*scope.items, item)),
                    node.name,
                )
                for index, item in enumerate(value or ())
            ]
            task = (run_map_join, ctx, call, ends, token, returned)
            part.add(frontier.join, task, scope.span, ends, token)
        elif not value:
            part.add(frontier.join, (passthrough, token), scope.span, token)
        else:
            index = frontier.index
            items = (*scope.items, str(index))
            end = self._branch(
                part,
                node.branches[0],
                [token],
                Entry(node.internal_name, True, Bind(node.step.index_as, index)),
                replace(
                    scope.inside(node),
                    items=items,
                    indexes=(*scope.indexes, node.step.index_as),
                    span=(*scope.span, fill(node.branches[0].internal_name, items)),
                ),
                node.name,
            )
            after = self._key(node.name, f"{call.internal_name}/{index}")
            part.add(after, (loop_next, ctx, call, index, end, token), scope.span, end, token)
            self._frontier(part, replace(frontier, token=after, index=index + 1))
        yield part

    def _batches(
        self,
        part: GraphPart,
        frontier: Frontier,
        inner: Scope,
        items: tuple[str, ...],
        firsts: range,
    ) -> None:
        """Tasks of a batched map's iterations: one per ``batch_size`` items from each of
        ``firsts``, running the items' steps in turn (:mod:`runnable_dask.runtime.batch`)."""
        node, branch = frontier.node, frontier.node.branches[0]
        steps = _steps(branch)
        terminals: dict[str, tuple[str, str]] = {
            name: (name, kind) for name, kind in branch.terminals.items()
        }
        size = node.step.batch_size
        for first in firsts:
            batch = []
            for index in range(first, min(first + size, len(items))):
                scope = replace(inner, items=(*frontier.scope.items, items[index]))
                entries = [self._item_entry(node, index)] + [
                    Entry(n.internal_name) for n in steps[1:]
                ]
                calls = tuple(
                    scope.call(n, entry, forwards=True)
                    for n, entry in zip(steps, entries, strict=True)
                )
                end = EndCall(
                    branch=branch.internal_name,
                    terminals=terminals,
                    entry=None,
                    is_root=False,
                    items=scope.items,
                    hidden=scope.hidden,
                )
                batch.append(BatchItem(calls, end))
            key = self._batch_key(frontier, first)
            call = BatchCall(name=key, items=tuple(batch))
            task = (run_batch, self.ctx, call, frontier.token)
            part.add(key, task, inner.span, frontier.token)
            resources = _most(inner.resources, steps)
            if resources:
                part.resources[key] = resources

    def _batch_key(self, frontier: Frontier, first: int) -> str:
        """Named after the map instance and the batch's first item: the same key each
        time the batch runs (a lost worker, a resume)."""
        name = _steps(frontier.node.branches[0])[0].name
        return self._key(name, f"{frontier.call.internal_name}/batch/{first}")

    @staticmethod
    def _item_entry(node: Node, index: int) -> Entry:
        """How control enters a map's iteration ``index``: its item bound."""
        step = node.step
        return Entry(node.internal_name, True, Bind(step.iterate_as, index, step.iterate_on))

    def step_keys(self) -> dict[str, str]:
        """Task key -> internal name of every step outside maps and loops, to name the step
        behind a Dask error (iterations are named by the events they report)."""
        return {
            self._key(node.name, node.internal_name): node.internal_name
            for branch, node in self.plan.nodes()
            if node.internal_name not in branch.terminals and PLACEHOLDER not in node.internal_name
        }

    def _branch(
        self,
        part: GraphPart,
        branch: Branch,
        inputs: list[Input],
        entry: Entry,
        scope: Scope,
        end_name: str,
    ) -> str:
        items = scope.items
        steps = _steps(branch)
        keys = {n.internal_name: self._key(n.name, fill(n.internal_name, items)) for n in steps}
        routes: dict[str, list[str]] = defaultdict(list)
        for node in steps:
            for target in dict.fromkeys((node.on_success, node.on_failure)):
                routes[target].append(keys[node.internal_name])

        terminals: dict[str, tuple[str, str]] = {
            name: (name, kind) for name, kind in branch.terminals.items()
        }
        end_inputs: list[Input] = list(
            dict.fromkeys(k for t in branch.terminals for k in routes.get(t, []))
        )
        if branch.entry in branch.terminals:
            terminals[entry.label] = terminals[branch.entry]
            end_inputs = list(inputs)
        end_call = EndCall(
            branch=branch.internal_name,
            terminals=terminals,
            entry=entry if branch.entry in branch.terminals else None,
            is_root=not branch.internal_name,
            items=items,
            hidden=scope.hidden,
        )
        if _linear(branch, steps):
            # Steps in a row whose failures end the branch: each passes on control meant
            # for the branch's end, so the last step ends the branch in its own task (no
            # task of its own for the end: half the tasks of a wide map).
            previous: list[Input] = list(inputs)
            for node in steps:
                own = entry if node is steps[0] else Entry(node.internal_name)
                call = scope.call(node, own, forwards=True)
                task: tuple[Any, ...] = (
                    (run_step, self.ctx, call, *previous)
                    if node is not steps[-1]
                    else (run_step_and_end, self.ctx, call, end_call, *previous)
                )
                last = part.add(keys[node.internal_name], task, scope.span, *previous)
                scope.restrict(part, last, node)
                previous = [last]
            return last

        for node in steps:
            is_entry = node.internal_name == branch.entry
            call = scope.call(node, entry if is_entry else Entry(node.internal_name))
            node_inputs: list[Input] = inputs if is_entry else [*routes[node.internal_name]]
            self._node(part, node, call, scope, keys[node.internal_name], node_inputs)
        name = branch.key if branch.key and branch.key != PLACEHOLDER else end_name
        end_key = self._key(name, fill(branch.internal_name, items) + "/end")
        task = (run_branch_end, self.ctx, end_call, *end_inputs)
        return part.add(end_key, task, scope.span, *end_inputs)

    def _node(
        self,
        part: GraphPart,
        node: Node,
        call: StepCall,
        scope: Scope,
        key: str,
        inputs: list[Input],
    ) -> None:
        ctx, span = self.ctx, scope.span
        if node.kind in ("task", "stub"):
            part.add(key, (run_step, ctx, call, *inputs), span, *inputs)
            scope.restrict(part, key, node)
        elif node.kind == "parallel":
            opened = replace(call.entry, opens_branch=True)
            ends = [
                self._branch(part, sub, inputs, opened, self._within(scope, node, sub), sub.key)
                for sub in node.branches
            ]
            part.add(key, (run_parallel, ctx, call, ends, list(inputs)), span, ends, *inputs)
        elif node.kind == "conditional":
            start = self._key(node.name, f"{call.internal_name}/start")
            part.add(start, (run_conditional, ctx, call, *inputs), span, *inputs)
            ends = [
                self._branch(
                    part,
                    sub,
                    [start],
                    Entry(sub.internal_name, True),
                    self._within(scope, node, sub),
                    sub.key,
                )
                for sub in node.branches
            ]
            part.add(key, (run_conditional_join, ctx, call, ends, start), span, ends, start)
        else:  # map, loop: only their start now
            start = self._key(node.name, f"{call.internal_name}/start")
            part.add(start, (run_probe, ctx, call, *inputs), span, *inputs)
            kind: Literal["map", "loop"] = "map" if node.kind == "map" else "loop"
            self._frontier(
                part,
                Frontier(kind=kind, node=node, call=call, scope=scope, token=start, join=key),
            )

    def _frontier(self, part: GraphPart, frontier: Frontier) -> None:
        call, token = frontier.call, frontier.token
        read = map_items if frontier.kind == "map" else loop_goes_on
        suffix = "items" if frontier.kind == "map" else f"{frontier.index}/goes-on"
        info = self._key(frontier.node.name, f"{call.internal_name}/{suffix}")
        part.add(info, (read, call, token), frontier.scope.span, token)
        part.frontiers[info] = frontier

    @staticmethod
    def _within(scope: Scope, node: Node, branch: Branch) -> Scope:
        """A Parallel's or Conditional's branch: a span of its own inside the step's."""
        inner = scope.inside(node)
        return replace(inner, span=(*inner.span, fill(branch.internal_name, scope.items)))

    def _key(self, name: str, internal_name: str) -> str:
        """``<name>-<digits>``: groups by name in the dashboard, unique per run and node."""
        digest = hashlib.blake2b(f"{self.ctx.run_id}/{internal_name}".encode(), digest_size=8)
        return f"{name.replace('-', '_')}-{int.from_bytes(digest.digest(), 'big')}"


def _most(outer: Resources, steps: list[Node]) -> Resources:
    """What a task running ``steps`` in turn asks of its worker: each resource's largest
    amount over its task steps (their own over the composites' ``outer``)."""
    most: Resources = {}
    for node in steps:
        if node.kind == "task":
            for name, amount in merge(outer, node.step.resources).items():
                most[name] = max(amount, most.get(name, amount))
    return most


def _steps(branch: Branch) -> list[Node]:
    """The branch's nodes that run (its terminals aside)."""
    return [n for n in branch.nodes if n.internal_name not in branch.terminals]


def _linear(branch: Branch, steps: list[Node]) -> bool:
    """A branch of tasks or stubs in a row, each going to the next on success and to a
    terminal on failure (the default), the last to a terminal either way."""
    if branch.internal_name == "" or not steps or steps[0].internal_name != branch.entry:
        return False
    for node, after in zip(steps, [*steps[1:], None], strict=True):
        on_success = after.internal_name if after is not None else None
        if (
            node.kind not in ("task", "stub")
            or node.on_failure not in branch.terminals
            or (node.on_success != on_success if after else node.on_success not in branch.terminals)
        ):
            return False
    return True


def _light(node: Node) -> Node:
    """The node as a task carries it: its branches' names, not their whole sub-plans, nor
    a Parallel's definition (its join reads none of it; wide 1000's was 324 KB, pickled
    by the driver and unpickled by the scheduler and a worker in every run)."""
    if not node.branches:
        return node
    step = None if node.kind == "parallel" else node.step
    return replace(node, step=step, branches=tuple(replace(b, nodes=()) for b in node.branches))


def _returned(node: Node) -> tuple[tuple[str, ParamKind], ...]:
    """The names a composite's branch returns anywhere inside it, with their kinds."""
    kinds: dict[str, ParamKind] = {}
    for _, inner in node.branches[0].walk():
        for spec in getattr(inner.step, "returns", ()):
            kinds.setdefault(spec.name, spec.kind)
    return tuple(kinds.items())
