"""A run log written in parts while its run goes: each write appends only what changed,
every read folds the parts in, and the run's last write leaves one document."""

from __future__ import annotations

import json
from pathlib import Path

from runnable_dask.stores.packed import UNWRITTEN, PackedBranches
from runnable_dask.stores.runlog import Attempt, BranchLog, RunLog, StepLog
from runnable_dask.stores.runlog_store import RunLogStore

ITEMS = [str(i) for i in range(50)]


def a_run(store: RunLogStore) -> RunLog:
    """A run claimed in ``store`` (its document written), then a map of 50 items listed."""
    run_log = RunLog(run_id="parts", status="PROCESSING")
    store.create(run_log)
    sweep = run_log.steps["sweep"] = StepLog(name="sweep", internal_name="sweep", step_type="map")
    sweep.branches = PackedBranches()
    sweep.branches.placeholders([f"sweep.{item}" for item in ITEMS])
    return run_log


def finish(run_log: RunLog, item: str, status: str = "SUCCESS") -> None:
    branches = run_log.steps["sweep"].branches
    assert isinstance(branches, PackedBranches)
    branch = branches.live(f"sweep.{item}")
    assert branch is not None
    name = f"sweep.{item}.work"
    branch.steps[name] = StepLog(
        name="work",
        internal_name=name,
        status=status,  # type: ignore[arg-type]
        attempts=[Attempt(status=status, start_time="2026-12-01T05:00:00")],  # type: ignore[arg-type]
    )
    branch.status = status  # type: ignore[assignment]
    branches.pack(f"sweep.{item}")


def parts(folder: Path) -> list[dict[str, object]]:
    """The headers of the parts file's lines."""
    text = (folder / ".parts.parts").read_bytes()
    return [json.loads(line.partition(b"\t")[0]) for line in text.splitlines()]


def test_each_write_appends_only_what_changed_and_reads_fold_it_in(tmp_path: Path) -> None:
    store = RunLogStore(tmp_path)
    run_log = a_run(store)
    document = (tmp_path / "parts.json").read_bytes()

    store.write_changes(run_log)
    first = parts(tmp_path)
    assert "base" in first[0]
    assert {"step": "sweep", "split": True} in first
    assert {"listed": "sweep"} in first  # the items, listed in one part
    assert not [p for p in first if "branch" in p]
    assert store.read("parts") == run_log

    finish(run_log, "3")
    finish(run_log, "7", "FAIL")
    store.write_changes(run_log)
    added = parts(tmp_path)[len(first) :]
    assert added == [{"branch": ["sweep", "sweep.3"]}, {"branch": ["sweep", "sweep.7"]}]
    store.write_changes(run_log)  # nothing changed: nothing appended
    assert len(parts(tmp_path)) == len(first) + 2

    # The document is as claimed; a read sees the run as it stands.
    assert (tmp_path / "parts.json").read_bytes() == document
    read = store.read("parts")
    assert read == run_log
    assert read.failures() == [("sweep.7.work", "")]
    assert read.step("sweep.3.work").status == "SUCCESS"
    assert json.loads(store.read_bytes("parts")) == json.loads(run_log.model_dump_json())

    # The run's last write: one document, no parts.
    run_log.status = "FAIL"
    store.write(run_log)
    assert not (tmp_path / ".parts.parts").exists()
    assert store.read("parts") == run_log


def test_parts_go_on_from_a_document_written_in_pieces(tmp_path: Path) -> None:
    """A whole write mid-run (streamed to its file) is the base of the parts after it,
    and a write of more changed items than one chunk of lines reads back whole."""
    store = RunLogStore(tmp_path)
    run_log = RunLog(run_id="parts", status="PROCESSING")
    store.create(run_log)
    sweep = run_log.steps["sweep"] = StepLog(name="sweep", internal_name="sweep", step_type="map")
    sweep.branches = PackedBranches()
    many = [str(i) for i in range(2500)]
    sweep.branches.placeholders([f"sweep.{item}" for item in many])
    for item in many[:150]:  # a pack of a hundred compressed, fifty apart
        finish(run_log, item)
    store.write(run_log)  # whole, as a store does when it cannot go on from its parts

    for item in many[150:]:
        finish(run_log, item, "FAIL" if item == "1234" else "SUCCESS")
    store.write_changes(run_log)
    assert [p for p in parts(tmp_path) if "branch" in p] == [
        {"branch": ["sweep", f"sweep.{item}"]} for item in many[150:]
    ]
    read = store.read("parts")
    assert read == run_log
    assert read.failures() == [("sweep.1234.work", "")]


def test_the_runs_own_fields_and_new_steps_are_parts_too(tmp_path: Path) -> None:
    store = RunLogStore(tmp_path)
    run_log = a_run(store)
    store.write_changes(run_log)
    run_log.steps["after"] = StepLog(name="after", internal_name="after", status="SUCCESS")
    run_log.parameters = {}
    run_log.run_config["error"] = "stopped"
    store.write_changes(run_log)
    added = parts(tmp_path)[-2:]
    assert added == [{"run": 1}, {"step": "after", "split": False}]
    assert store.read("parts") == run_log
    assert list(store.read("parts").steps) == ["sweep", "after"]


def test_a_last_line_cut_short_is_left_out(tmp_path: Path) -> None:
    """A driver killed in the middle of an append: the log as of its last whole part."""
    store = RunLogStore(tmp_path)
    run_log = a_run(store)
    store.write_changes(run_log)
    before = store.read("parts")
    finish(run_log, "1")
    store.write_changes(run_log)
    path = tmp_path / ".parts.parts"
    path.write_bytes(path.read_bytes()[:-20])

    assert store.read("parts") == before
    assert RunLogStore(tmp_path).read("parts").steps["sweep"].branches["sweep.1"].steps == {}


def test_parts_beside_a_newer_document_are_ignored(tmp_path: Path) -> None:
    """A crash between writing the final document and removing the parts: the document
    stands (older parts are never applied over it)."""
    store = RunLogStore(tmp_path)
    run_log = a_run(store)
    store.write_changes(run_log)
    stale = (tmp_path / ".parts.parts").read_bytes()
    for item in ITEMS:
        finish(run_log, item)
    run_log.status = "SUCCESS"
    store.write(run_log)
    (tmp_path / ".parts.parts").write_bytes(stale)

    read = store.read("parts")
    assert read.status == "SUCCESS"
    assert read == run_log


def test_a_parallel_steps_branches_are_written_one_by_one(tmp_path: Path) -> None:
    store = RunLogStore(tmp_path)
    run_log = RunLog(run_id="parts", status="PROCESSING")
    store.create(run_log)
    names = [f"wide.{i}" for i in range(10)]
    wide = StepLog(name="wide", internal_name="wide", step_type="parallel")
    wide.branches = {name: BranchLog(internal_name=name) for name in names}
    run_log.steps["wide"] = wide
    store.write_changes(run_log)
    wide.branches["wide.4"].status = "SUCCESS"
    store.write_changes(run_log)

    assert parts(tmp_path)[-1] == {"branch": ["wide", "wide.4"]}
    read = store.read("parts")
    assert [b.status for b in read.steps["wide"].branches.values()].count("SUCCESS") == 1
    assert read == run_log


def test_items_compressed_between_writes_are_written_once_each(tmp_path: Path) -> None:
    """Every hundred finished items are compressed together; a write of what changed
    takes each item finished since the last write once, packed or not, and an item
    taken out of its pack again (a retry) is written as it stands now."""
    store = RunLogStore(tmp_path)
    run_log = RunLog(run_id="parts", status="PROCESSING")
    store.create(run_log)
    sweep = run_log.steps["sweep"] = StepLog(name="sweep", internal_name="sweep", step_type="map")
    branches = sweep.branches = PackedBranches()
    branches.placeholders([f"sweep.{item}" for item in range(250)])
    store.write_changes(run_log)
    written = len(parts(tmp_path))

    for item in range(150):  # items 0-99 compressed, 100-149 still apart
        finish(run_log, str(item))
    retried = branches.live("sweep.42")  # out of its pack before the write
    assert retried is not None
    retried.status = "FAIL"
    store.write_changes(run_log)
    added = parts(tmp_path)[written:]
    assert added == [{"branch": ["sweep", f"sweep.{item}"]} for item in range(150)]
    assert store.read("parts") == run_log

    branches.pack("sweep.42")
    for item in range(150, 250):
        finish(run_log, str(item))
    store.write_changes(run_log)
    added = parts(tmp_path)[written + 150 :]
    assert added == [{"branch": ["sweep", f"sweep.{item}"]} for item in [42, *range(150, 250)]]
    read = store.read("parts")
    assert read == run_log
    assert read.steps["sweep"].branches["sweep.42"].status == "FAIL"


def test_more_items_between_two_writes_than_are_kept_for_them(tmp_path: Path) -> None:
    """Items finished between two writes beyond the JSON kept for the next write are read
    back from their packs: each is still written once, as it stands."""
    store = RunLogStore(tmp_path)
    run_log = RunLog(run_id="parts", status="PROCESSING")
    store.create(run_log)
    sweep = run_log.steps["sweep"] = StepLog(name="sweep", internal_name="sweep", step_type="map")
    count = UNWRITTEN + 500
    sweep.branches = PackedBranches()
    sweep.branches.placeholders([f"sweep.{item}" for item in range(count)])
    store.write_changes(run_log)
    written = len(parts(tmp_path))
    for item in range(count):
        finish(run_log, str(item), "FAIL" if item == 3 else "SUCCESS")
    store.write_changes(run_log)
    added = parts(tmp_path)[written:]
    assert added == [{"branch": ["sweep", f"sweep.{item}"]} for item in range(count)]
    read = store.read("parts")
    assert read == run_log
    assert read.failures() == [("sweep.3.work", "")]
