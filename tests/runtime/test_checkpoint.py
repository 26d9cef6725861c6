"""Checkpoints as a cluster keeps them: a file per step (an object store), or a batch's
journal; what a worker killed while writing one leaves behind is read as not kept (the
step was not reported, so it runs again), never as an error."""

from __future__ import annotations

from pathlib import Path

from runnable_dask.runtime import checkpoint
from runnable_dask.runtime.tokens import Param
from runnable_dask.stores.catalog import RunCatalog

DONE = checkpoint.Checkpoint(target="next", outputs={}, event={"status": "SUCCESS"})


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
    kept = checkpoint.Checkpoint("next", {"model": Param(kind="object", value=Model())}, {})
    files.keep("fit", kept)
    assert files.load("fit").outputs["model"].value.weights == (1, 2)


def test_a_journal_cut_short_keeps_its_whole_records(tmp_path: Path) -> None:
    """A worker killed while appending a checkpoint leaves half a record: the records
    before it are kept, and the batch appends after them when it runs again."""
    catalog = catalog_in(tmp_path)
    files = checkpoint.FileCheckpoints(catalog)
    done = DONE
    with files.journal("batch") as kept:
        kept.keep("m.0.a", done)
        kept.keep("m.1.a", done)
    path = Path(catalog.local_path(f"{checkpoint.JOURNALS}/batch.log") or "")
    path.write_bytes(path.read_bytes()[:-5])  # the second record cut short

    with files.journal("batch") as kept:
        assert kept.load("m.0.a") == done
        assert kept.load("m.1.a") is None
        kept.keep("m.1.a", done)
    assert set(checkpoint.load_all(catalog)) == {"m.0.a", "m.1.a"}
