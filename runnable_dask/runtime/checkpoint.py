"""A finished task's outcome, kept in the run's catalog so the task never runs twice.

Dask recomputes a task whose result lived on a worker that died, and resuming a run
lowers the whole pipeline again. In both cases a task whose checkpoint exists returns
the stored outcome instead of running its step again: finished work is not redone, and
pickled values outlive the workers that held them. Only successes are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cloudpickle

from runnable_dask.runtime.tokens import Param
from runnable_dask.stores.catalog import RunCatalog


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where control went, the values the step returned, and the event that recorded it."""

    target: str
    outputs: dict[str, Param]
    event: dict[str, Any]


def _path(internal_name: str) -> str:
    return f".checkpoints/{internal_name}.pickle"


def load(catalog: RunCatalog, internal_name: str) -> Checkpoint | None:
    """The step's checkpoint, if it finished before (in this run or the run resumed)."""
    data = catalog.read_bytes(_path(internal_name))
    return None if data is None else cloudpickle.loads(data)


def save(catalog: RunCatalog, internal_name: str, checkpoint: Checkpoint) -> None:
    """Keep a successful step's outcome."""
    catalog.write_bytes(_path(internal_name), cloudpickle.dumps(checkpoint))
