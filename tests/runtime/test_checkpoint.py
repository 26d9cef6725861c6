"""Checkpoints as a cluster keeps them where it cannot append (a file per step, on an
object store); what a worker killed while writing one leaves behind is read as not kept
(the step was not reported, so it runs again), never as an error. Processes' journals
are tested in ``test_worker_journal``."""

from __future__ import annotations

from pathlib import Path

from runnable_dask.runtime import checkpoint
from runnable_dask.runtime.events import StepEnded
from runnable_dask.runtime.tokens import Param
from runnable_dask.stores.catalog import RunCatalog

ENDED = StepEnded("a", "a", (), "a", "task", "SUCCESS")
DONE = checkpoint.Checkpoint(target="next", outputs={}, event=ENDED)


def catalog_in(folder: Path) -> RunCatalog:
    return RunCatalog(str(folder / "catalog"), "r")


def test_a_step_file_cut_short_reads_as_not_kept(tmp_path: Path) -> None:
    """A step's own file (an object store's, or unpacked for a resumed run)."""
    files = checkpoint.FileCheckpoints(catalog_in(tmp_path), resumed=True)
    checkpoint.save(files.catalog, "a", DONE)
    assert files.load("a") == DONE
    path = Path(files.catalog.local_path(".checkpoints/a.pickle") or "")
    path.write_bytes(path.read_bytes()[:-3])
    assert files.load("a") is None


def test_returned_objects_are_kept_by_value(tmp_path: Path) -> None:
    """A class defined where it ran (a script's ``__main__``, here a function's body)
    is pickled by value, so a resumed run that imports the script otherwise loads it."""

    class Model:
        weights = (1, 2)

    files = checkpoint.FileCheckpoints(catalog_in(tmp_path))
    kept = checkpoint.Checkpoint("next", {"model": Param(kind="object", value=Model())}, ENDED)
    files.keep("fit", kept)
    assert files.load("fit").outputs["model"].value.weights == (1, 2)
