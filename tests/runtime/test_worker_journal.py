"""Each process's journal of checkpoints, read by every other process of the run: a step
kept by one process (a worker, here a real child process) is found by another, and a
record cut short (its writer killed while appending) is read as not kept."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from runnable_dask.runtime import checkpoint, worker_journal
from runnable_dask.stores.catalog import RunCatalog

DONE = checkpoint.Checkpoint(target="next", outputs={}, event={"status": "SUCCESS"})

KEEP_IN_A_CHILD = """
import sys
from runnable_dask.runtime import checkpoint, worker_journal
from runnable_dask.stores.catalog import RunCatalog

files = checkpoint.FileCheckpoints(RunCatalog(sys.argv[1], "r"))
for name in sys.argv[2:]:
    files.keep(name, checkpoint.Checkpoint("next", {}, {"kept by": name}))
"""


def keep_in_a_child(location: Path, *names: str) -> None:
    subprocess.run([sys.executable, "-c", KEEP_IN_A_CHILD, str(location), *names], check=True)


def journals(location: Path, run_id: str = "r") -> list[Path]:
    return sorted((location / run_id / checkpoint.WORKERS).glob("*.journal"))


def test_a_step_kept_by_another_process_is_found(tmp_path: Path) -> None:
    location = tmp_path / "catalog"
    files = checkpoint.FileCheckpoints(RunCatalog(str(location), "r"))
    files.keep("mine", DONE)
    assert files.load("a") is None  # looked before the other process kept it
    keep_in_a_child(location, "a", "b")
    keep_in_a_child(location, "c")

    assert len(journals(location)) == 3  # one per process
    assert files.load("mine") == DONE
    assert [files.load(n).event for n in "abc"] == [{"kept by": n} for n in "abc"]  # type: ignore[union-attr]
    assert files.load("d") is None
    assert set(checkpoint.load_all(files.catalog)) == {"mine", "a", "b", "c"}


def test_a_record_cut_short_reads_as_not_kept(tmp_path: Path) -> None:
    location = tmp_path / "catalog"
    keep_in_a_child(location, "a", "b")
    [path] = journals(location)
    path.write_bytes(path.read_bytes()[:-5])  # the writer killed while appending "b"

    files = checkpoint.FileCheckpoints(RunCatalog(str(location), "r"))
    assert files.load("a") is not None
    assert files.load("b") is None
    assert set(checkpoint.load_all(files.catalog)) == {"a"}


def test_a_resumed_run_finds_steps_kept_as_files_of_their_own(tmp_path: Path) -> None:
    """An earlier run of the same folder that ran in-process or on an object store."""
    catalog = RunCatalog(str(tmp_path / "catalog"), "r")
    checkpoint.save(catalog, "earlier", DONE)
    assert checkpoint.FileCheckpoints(catalog).load("earlier") is None  # not looked for
    assert checkpoint.FileCheckpoints(catalog, resumed=True).load("earlier") == DONE


def test_a_process_serving_many_runs_keeps_few_journals_open(tmp_path: Path) -> None:
    """A standing cluster's worker runs one run after another: it closes the journals
    of the oldest, and a step kept for that run afterwards goes to a new journal."""
    runs = [
        RunCatalog(str(tmp_path / "catalog"), f"run-{i}")
        for i in range(worker_journal.RUNS_OPEN + 1)
    ]
    first = runs[0]
    for catalog in runs:
        checkpoint.FileCheckpoints(catalog).keep("a", DONE)

    checkpoint.FileCheckpoints(first).keep("b", DONE)
    assert len(journals(tmp_path / "catalog", "run-0")) == 2
    assert set(checkpoint.load_all(first)) == {"a", "b"}
    assert checkpoint.FileCheckpoints(first).load("a") == DONE
