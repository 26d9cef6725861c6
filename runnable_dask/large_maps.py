"""Summaries of a run log that do not read every item of a large map.

A map's ended items are held packed, as JSON (:mod:`runnable_dask.stores.packed`); read
back into objects, a map of 100,000 items took a notebook 28 s to summarise and the run
report 30 s and 1.9 GB. The summaries (the notebook's, the report) walk every step but
those inside a map of more than :data:`LARGE` items, count that map's items by status
from their packs, and list its first branches and its failed ones.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from runnable_dask.stores.packed import PackedBranches

if TYPE_CHECKING:
    from runnable_dask.stores.runlog import BranchLog, StepLog

LARGE = 1000
"""Packed map items beyond which a map is summarised by its items' statuses."""


def is_large(step: StepLog) -> bool:
    return isinstance(step.branches, PackedBranches) and len(step.branches) > LARGE


def walk_outside(steps: Iterable[StepLog], large: list[StepLog]) -> Iterator[StepLog]:
    """Every step, depth first, but not inside a large map (added to ``large``)."""
    for step in steps:
        yield step
        if is_large(step):
            large.append(step)
            continue
        for branch in step.branches.values():
            yield from walk_outside(branch.steps.values(), large)


def item_statuses(step: StepLog) -> Counter[str]:
    """A map's items by status, read from their packs."""
    branches = step.branches
    if isinstance(branches, PackedBranches):
        return Counter(status for _, status in branches.statuses())
    return Counter(branch.status for branch in branches.values())


def branches_shown(step: StepLog, first: int) -> list[BranchLog]:
    """The first ``first`` branches and every failed one, in order; of a map's packed
    branches, only those are read."""
    branches = step.branches
    shown = list(itertools.islice(branches.values(), first))
    named = {branch.internal_name for branch in shown}
    later: Iterable[BranchLog] = (
        branches.with_failures()
        if isinstance(branches, PackedBranches)
        else itertools.islice(branches.values(), first, None)
    )
    return shown + [b for b in later if b.status == "FAIL" and b.internal_name not in named]
