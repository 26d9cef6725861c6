"""A batch of a Map's items in one Dask task: each item's branch in turn, as its own tasks
would have run it.

Dask pays about a millisecond of scheduling per task; a map of many short items spends
more there than in the items. A batch runs ``Map(batch_size=...)`` items one after
another, each through :func:`~runnable_dask.runtime.node.run_step` like an unbatched
item, so each keeps its own events, retries and checkpoint (in its process's journal,
:mod:`~runnable_dask.runtime.worker_journal`, before its events leave): a batch run
again after its worker was lost, or when its run is resumed, finds the items that
finished and runs only the others.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from runnable_dask.compact import Compact
from runnable_dask.runtime.context import Event, Reporter, RunContext, Send
from runnable_dask.runtime.node import EndCall, StepCall, run_branch_end, run_step
from runnable_dask.runtime.tokens import BranchEnd, Token

SEND_EVERY = 0.5
"""Seconds between the messages of a long batch (one message per batch when it is short)."""


@dataclass(frozen=True, slots=True)
class BatchItem(Compact):
    """One item's branch: its steps in a row, then its end."""

    steps: tuple[StepCall, ...]
    end: EndCall


@dataclass(frozen=True, slots=True)
class BatchCall(Compact):
    """A batch as its task sees it: its name (the same each time the batch runs: a lost
    worker, a resumed run) and its items."""

    name: str
    items: tuple[BatchItem, ...]

    def __dask_tokenize__(self) -> tuple[str, ...]:
        return ("BatchCall", self.name)  # one name per run and batch, as for StepCall


def run_batch(ctx: RunContext, batch: BatchCall, entered: Token) -> list[BranchEnd]:
    """Run each item's branch in turn; their ends, in the items' order."""
    pending = _Pending(ctx.reporter)
    ends = []
    inner = replace(ctx, reporter=pending)
    sent = time.monotonic()
    for item in batch.items:
        token = entered
        for call in item.steps:
            token = run_step(inner, call, token)
        ends.append(run_branch_end(inner, item.end, token))
        if time.monotonic() - sent >= SEND_EVERY:
            pending.send()
            sent = time.monotonic()
    pending.send()
    return ends


@dataclass(slots=True)
class _Pending:
    """Holds a batch's events between its messages."""

    parent: Reporter
    events: list[Event] = field(default_factory=list)

    def __call__(self, events: list[Event]) -> None:
        self.events.extend(events)

    def sender(self) -> Send:
        return self.parent.sender()

    def send(self) -> None:
        if self.events:
            self.parent(self.events)
            self.events = []
