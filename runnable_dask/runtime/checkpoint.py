"""A finished task's outcome, kept in the run's catalog so the task never runs twice.

Dask recomputes a task whose result lived on a worker that died, and resuming a run
lowers the whole pipeline again. In both cases a task whose checkpoint exists returns
the stored outcome instead of running its step again: finished work is not redone, and
pickled values outlive the workers that held them. Only successes are kept.

On a cluster each task writes its own file before it reports, since its worker may be
lost the moment after. A run whose tasks are threads of the driving process
(:class:`InProcessCheckpoints`) loses no worker: its checkpoints go to the driver and are
stored in one batch file each time the run log is written, so a step never costs a file
of its own (a tenth of a millisecond, most of a trivial step's cost).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any

import cloudpickle

from runnable_dask.compact import Compact
from runnable_dask.runtime.events import StepEnded
from runnable_dask.runtime.tokens import Param
from runnable_dask.stores.catalog import RunCatalog

FOLDER = ".checkpoints"
BATCHES = f"{FOLDER}/batches"


@dataclass(frozen=True, slots=True)
class Checkpoint(Compact):
    """Where control went, the values the step returned, and the event that recorded it."""

    target: str
    outputs: dict[str, Param]
    event: StepEnded


def _path(internal_name: str) -> str:
    return f"{FOLDER}/{internal_name}.pickle"


def load(catalog: RunCatalog, internal_name: str) -> Checkpoint | None:
    """The step's checkpoint, if it finished before (in this run or the run resumed)."""
    data = catalog.read_bytes(_path(internal_name))
    return None if data is None else cloudpickle.loads(data)


def save(catalog: RunCatalog, internal_name: str, checkpoint: Checkpoint) -> None:
    """Keep a successful step's outcome."""
    catalog.write_bytes(_path(internal_name), cloudpickle.dumps(checkpoint))


def load_all(catalog: RunCatalog) -> dict[str, Checkpoint]:
    """Every checkpoint of the run, from step files and batches (when a run resumes)."""
    found: dict[str, Checkpoint] = {}
    for relative in catalog.list_files(FOLDER):
        data = catalog.read_bytes(relative)
        if data is None or not relative.endswith(".pickle"):
            continue
        if relative.startswith(f"{BATCHES}/"):
            found.update(_unpickled(data) or {})
        elif (checkpoint := _unpickled(data)) is not None:
            found[relative[len(FOLDER) + 1 : -len(".pickle")]] = checkpoint
    return found


def unpack_batches(catalog: RunCatalog) -> None:
    """Give each batched checkpoint its own file, where tasks on a cluster look for it
    (a run that ran in-process, resumed on a cluster)."""
    for relative in catalog.list_files(BATCHES):
        batch = _unpickled(catalog.read_bytes(relative) or b"") or {}
        for internal_name, checkpoint in batch.items():
            save(catalog, internal_name, checkpoint)


def _unpickled(data: bytes) -> Any:
    """A stored checkpoint or batch; None if it was cut short (the driver was killed
    while writing it: its steps were not recorded as done either, so they run again)."""
    try:
        return cloudpickle.loads(data)
    except Exception:
        return None


class InProcessCheckpoints:
    """The checkpoints of a run whose tasks are threads of the driving process.

    Tasks hand theirs over with :meth:`add`; the recorder calls :meth:`flush` before
    each write of the run log, so every success the run log records has its checkpoint
    stored, as on a cluster. ``earlier`` are those of the run this one resumes.
    """

    def __init__(self, catalog: RunCatalog, earlier: dict[str, Checkpoint]) -> None:
        self.catalog = catalog
        self.earlier = earlier
        self._new: list[tuple[str, Checkpoint]] = []

    def load(self, internal_name: str) -> Checkpoint | None:
        return self.earlier.get(internal_name)

    def add(self, internal_name: str, checkpoint: Checkpoint) -> None:
        self._new.append((internal_name, checkpoint))  # list.append is atomic across threads

    def flush(self) -> None:
        """Store what tasks added since the last flush, as one batch file."""
        count = len(self._new)
        if not count:
            return
        batch = dict(self._new[:count])
        del self._new[:count]
        name = f"{BATCHES}/{os.getpid()}-{uuid.uuid4().hex}.pickle"
        self.catalog.write_bytes(name, cloudpickle.dumps(batch))
