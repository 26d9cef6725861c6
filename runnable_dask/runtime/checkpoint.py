"""A finished task's outcome, kept in the run's catalog so the task never runs twice.

Dask recomputes a task whose result lived on a worker that died, and resuming a run
lowers the whole pipeline again. In both cases a task whose checkpoint exists returns
the stored outcome instead of running its step again: finished work is not redone, and
pickled values outlive the workers that held them. Only successes are kept.

Where they are kept is the executor's choice, behind :class:`Checkpoints`:

* On a cluster (:class:`FileCheckpoints`) each task keeps its own before it reports,
  since its worker may be lost the moment after: appended to its process's journal
  where the catalog is on a local disk (:mod:`runnable_dask.runtime.worker_journal`,
  where any process of the run finds it), else as a file of its own (most object stores
  cannot append). A task that runs many steps in turn (a batch of a Map's items) keeps
  each the same way, before the step is reported: a lost worker costs only the steps
  not yet kept, and the batch run again elsewhere finds the others.
* A run whose tasks are threads of the driving process (:class:`InProcessCheckpoints`)
  loses no worker: its checkpoints go to the driver and are stored in one batch file
  each time the run log is written, so a step never costs a file of its own.
"""

from __future__ import annotations

import os
import pickle
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import cloudpickle

from runnable_dask.compact import Compact
from runnable_dask.runtime import worker_journal
from runnable_dask.runtime.events import StepEnded
from runnable_dask.runtime.tokens import Param
from runnable_dask.stores.catalog import RunCatalog

FOLDER = ".checkpoints"
BATCHES = f"{FOLDER}/batches"
WORKERS = f"{FOLDER}/workers"


@dataclass(frozen=True, slots=True)
class Checkpoint(Compact):
    """Where control went, the values the step returned, and the event that recorded it."""

    target: str
    outputs: dict[str, Param]
    event: StepEnded

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Flat, under one name: a pickler looks up each class it names, every time it
        # writes one (a step's checkpoint named three: its own, its event's, a value's).
        outputs = tuple((name, p.kind, p.value, p.digest) for name, p in self.outputs.items())
        return _checkpoint, (self.target, outputs, self.event.__reduce__()[1])


def _checkpoint(
    target: str, outputs: tuple[tuple[str, Any, Any, str], ...], event: tuple[Any, ...]
) -> Checkpoint:
    """A :class:`Checkpoint` from its flat pickled form."""
    values = {name: Param(kind, value, digest) for name, kind, value, digest in outputs}
    return Checkpoint(target, values, StepEnded(*event))


class Checkpoints(Protocol):
    """Where a run's tasks keep their successes and find those of earlier attempts."""

    in_driver: bool
    """Whether what is kept is stored by the driving process, before it writes the run
    log (a step cache entry may then be written later too), rather than by the task."""

    def load(self, internal_name: str) -> Checkpoint | None:
        """The step's checkpoint, if it finished before (in this run or the run resumed)."""

    def keep(self, internal_name: str, checkpoint: Checkpoint) -> None:
        """Keep a success, stored before the step's success can be recorded."""

    def flush(self) -> None:
        """Store what is held; the recorder calls it before each write of the run log."""


def _path(internal_name: str) -> str:
    return f"{FOLDER}/{internal_name}.pickle"


def load(catalog: RunCatalog, internal_name: str) -> Checkpoint | None:
    """The step's checkpoint file, if it has one."""
    data = catalog.read_bytes(_path(internal_name))
    return None if data is None else _unpickled(data)


def save(catalog: RunCatalog, internal_name: str, checkpoint: Checkpoint) -> None:
    """Keep a successful step's outcome in a file of its own."""
    catalog.write_bytes(_path(internal_name), _dumps(checkpoint, checkpoint))


def _dumps(value: Any, *checkpoints: Checkpoint) -> bytes:
    """``value``, holding ``checkpoints``, pickled: by the standard pickler when their
    values are plain data (half cloudpickle's time, which walks every object in Python);
    by cloudpickle when a step returned objects, which it pickles by value where they
    were defined in a script (``__main__``) that a resumed run imports under another
    name."""
    if any(p.kind == "object" for c in checkpoints for p in c.outputs.values()):
        return cloudpickle.dumps(value)
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def load_all(catalog: RunCatalog) -> dict[str, Checkpoint]:
    """Every checkpoint of the run, from step files, batches and processes' journals
    (when a run resumes in the driving process)."""
    found: dict[str, Checkpoint] = {}
    for relative in catalog.list_files(FOLDER):
        data = catalog.read_bytes(relative)
        if data is None:
            continue
        if relative.endswith(worker_journal.SUFFIX):
            found.update(_read_worker_journal(data))
        elif not relative.endswith(".pickle"):
            continue
        elif relative.startswith(f"{BATCHES}/"):
            found.update(_unpickled(data) or {})
        elif (checkpoint := _unpickled(data)) is not None:
            found[relative[len(FOLDER) + 1 : -len(".pickle")]] = checkpoint
    return found


def unpack_batches(catalog: RunCatalog) -> None:
    """Give each checkpoint of a batch file its own file, where any task on a cluster
    looks for it (a run that ran in-process, resumed on a cluster). Processes' journals
    need none: every task reads them."""
    for relative in catalog.list_files(BATCHES):
        held = _unpickled(catalog.read_bytes(relative) or b"")
        for internal_name, checkpoint in (held or {}).items():
            save(catalog, internal_name, checkpoint)


def _unpickled(data: bytes) -> Any:
    """A stored checkpoint or batch; None if it was cut short (the driver or worker was
    killed while writing it: its steps were not recorded as done either, so they run
    again)."""
    try:
        return cloudpickle.loads(data)
    except Exception:
        return None


def _read_worker_journal(data: bytes) -> dict[str, Checkpoint]:
    """The checkpoints of a process's journal (see :mod:`worker_journal`)."""
    found = {}
    for name, start, size in worker_journal.records(data):
        if (kept := _unpickled(data[start : start + size])) is not None:
            found[name] = kept
    return found


@dataclass(frozen=True, slots=True)
class FileCheckpoints:
    """Checkpoints as files of the run's catalog, written by the tasks themselves (a
    cluster: any worker may be lost the moment after a step ends)."""

    catalog: RunCatalog
    resumed: bool = False
    """Whether the run resumes another, whose steps may have files of their own where
    this run keeps them in journals (it ran in-process, or on an object store)."""
    in_driver = False

    def load(self, internal_name: str) -> Checkpoint | None:
        journals = self._journals()
        if journals is not None:
            data = journals.find(internal_name)
            if data is not None:
                return _unpickled(data)
            if not self.resumed:  # no step has a file of its own
                return None
        return load(self.catalog, internal_name)

    def keep(self, internal_name: str, checkpoint: Checkpoint) -> None:
        journals = self._journals()
        if journals is None:
            save(self.catalog, internal_name, checkpoint)
        else:
            journals.append(internal_name, _dumps(checkpoint, checkpoint))

    def _journals(self) -> worker_journal.Journals | None:
        """This process's journals of the run; None where the catalog is not on a
        local disk."""
        folder = self.catalog.local_path(WORKERS)
        return None if folder is None else worker_journal.of(folder)

    @classmethod
    def open(cls, catalog: RunCatalog, resumed: bool) -> FileCheckpoints:
        """A run's: a resumed run's batched checkpoints unpacked to files of their own
        first (a run that ran in-process, resumed on a cluster)."""
        if resumed:
            unpack_batches(catalog)
        return cls(catalog, resumed)

    def flush(self) -> None:
        """Nothing is held: each task stored its own."""


class InProcessCheckpoints:
    """The checkpoints of a run whose tasks are threads of the driving process.

    Tasks hand theirs over with :meth:`keep`; the recorder calls :meth:`flush` before
    each write of the run log, so every success the run log records has its checkpoint
    stored, as on a cluster. ``earlier`` are those of the run this one resumes.
    """

    in_driver = True

    def __init__(self, catalog: RunCatalog, earlier: dict[str, Checkpoint]) -> None:
        self.catalog = catalog
        self.earlier = earlier
        self._new: list[tuple[str, Checkpoint]] = []

    @classmethod
    def open(cls, catalog: RunCatalog, resumed: bool) -> InProcessCheckpoints:
        """A run's, with the checkpoints of the run it resumes."""
        return cls(catalog, load_all(catalog) if resumed else {})

    def load(self, internal_name: str) -> Checkpoint | None:
        return self.earlier.get(internal_name)

    def keep(self, internal_name: str, checkpoint: Checkpoint) -> None:
        self._new.append((internal_name, checkpoint))  # list.append is atomic across threads

    def flush(self) -> None:
        """Store what tasks added since the last flush, as one batch file."""
        count = len(self._new)
        if not count:
            return
        batch = dict(self._new[:count])
        del self._new[:count]
        name = f"{BATCHES}/{os.getpid()}-{uuid.uuid4().hex}.pickle"
        self.catalog.write_bytes(name, _dumps(batch, *batch.values()))
