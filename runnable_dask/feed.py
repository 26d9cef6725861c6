"""Feed the executor the graph part by part: each task as soon as its inputs are defined.

Lowering gives the first part of the run and then, as maps and loops resolve, their
expansions. A task after a frontier reads a key that does not exist yet (the map's own
key, defined by its expansion); it waits here, in the driver, until that key is lowered.
Everything a waiting task or an open frontier will read is kept by the executor, and
released as soon as nothing still to be submitted reads it, so the driver holds no
per-item state for a map once its iterations are submitted.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from runnable_dask.executors import Deps, Executor, Tasks
from runnable_dask.lower import Frontier, GraphPart, Span
from runnable_dask.pending import PendingInputs
from runnable_dask.sdk.resources import Resources


class GraphFeed:
    """Which tasks wait for which keys, and which results later parts still read."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self._waiting: dict[str, tuple[tuple[Any, ...], tuple[str, ...], Span]] = {}
        self._pending = PendingInputs()
        self._readers: defaultdict[str, int] = defaultdict(int)
        self._kept: set[str] = set()
        self._frontiers: dict[str, Frontier] = {}
        self._watch: set[str] = set()
        self._resources: dict[str, Resources] = {}

    def add(self, part: GraphPart, watch: set[str] | None = None) -> None:
        """Submit what of ``part`` can run now; keep the rest until its inputs exist."""
        self._watch |= part.frontiers.keys() | (watch or set())
        self._frontiers.update(part.frontiers)
        self._resources.update(part.resources)
        for frontier in part.frontiers.values():
            self._readers[frontier.token] += 1
        batch, batch_deps, spans = self._ready_tasks(self._register(part))
        read_earlier = set()
        for deps in batch_deps.values():
            for dep in deps:
                self._readers[dep] -= 1
                if dep not in batch:
                    read_earlier.add(dep)
        keep = {key for key in batch if self._readers.get(key, 0) > 0}
        self._kept |= keep
        for key in batch.keys() - keep:
            self._readers.pop(key, None)
        if batch:
            watched = self._watch & batch.keys()
            self._watch -= watched
            resources = {k: self._resources.pop(k) for k in batch if k in self._resources}
            self.executor.submit(batch, batch_deps, keep, watched, spans, resources)
        self._release_unread(read_earlier)

    def _register(self, part: GraphPart) -> list[str]:
        """Note what each new task reads; return those whose inputs all exist."""
        ready = []
        for key, task in part.tasks.items():
            deps = part.deps[key]
            self._waiting[key] = (task, deps, part.spans[key])
            for dep in deps:
                self._readers[dep] += 1
            if self._pending.wait(key, [d for d in deps if d not in self._kept]):
                ready.append(key)
        return ready

    def _ready_tasks(self, ready: list[str]) -> tuple[Tasks, Deps, dict[str, Span]]:
        """``ready`` and every waiting task they complete the inputs of, transitively."""
        batch: Tasks = {}
        batch_deps: Deps = {}
        spans: dict[str, Span] = {}
        while ready:
            key = ready.pop()
            task, deps, span = self._waiting.pop(key)
            batch[key], batch_deps[key], spans[key] = task, deps, span
            ready.extend(self._pending.arrived(key))
        return batch, batch_deps, spans

    def frontier(self, key: str) -> Frontier:
        """The frontier whose value ``key`` carries; it is expanded once."""
        return self._frontiers.pop(key)

    def expanded(self, frontier: Frontier) -> None:
        """The frontier's expansion was added: it no longer needs its token kept."""
        self._readers[frontier.token] -= 1
        self._release_unread({frontier.token})

    def _release_unread(self, keys: set[str]) -> None:
        unread = [key for key in keys if self._readers.get(key, 0) <= 0 and key in self._kept]
        for key in unread:
            self._kept.discard(key)
            self._readers.pop(key, None)
        if unread:
            self.executor.release(unread)
