"""A map's packed branches in a stored run log: written in runnable's layout, read back
packed through the index, and read whole when the index does not match."""

from __future__ import annotations

import json
from pathlib import Path

from runnable_dask.stores.packed import PackedBranches, dump_run_log
from runnable_dask.stores.runlog import Attempt, RunLog, StepLog
from runnable_dask.stores.runlog_store import RunLogStore

ITEMS = ["0", "1", 'odd "name" {with} \\ braces', "3"]


def a_map_run() -> RunLog:
    """A run whose map has four items: two finished (packed), one failed, one running."""
    run_log = RunLog(run_id="packed", status="PROCESSING")
    sweep = run_log.steps["sweep"] = StepLog(name="sweep", internal_name="sweep", step_type="map")
    branches = sweep.branches = PackedBranches()
    branches.placeholders([f"sweep.{item}" for item in ITEMS])
    for item in ITEMS[:3]:
        branch = branches.live(f"sweep.{item}")
        assert branch is not None
        failed = item == ITEMS[2]
        branch.status = "FAIL" if failed else "SUCCESS"
        name = f"sweep.{item}.work"
        branch.steps[name] = StepLog(
            name="work",
            internal_name=name,
            status=branch.status,
            message="ValueError: broken" if failed else "",
            attempts=[Attempt(status=branch.status, start_time="2026-01-01T00:00:0" + item[0])],
        )
        branches.pack(f"sweep.{item}")
    run_log.steps["after"] = StepLog(name="after", internal_name="after", status="PROCESSING")
    return run_log


def test_packed_branches_are_stored_whole_and_read_back_packed(tmp_path: Path) -> None:
    store = RunLogStore(tmp_path)
    run_log = a_map_run()
    store.create(RunLog(run_id="packed"))
    store.write(run_log)

    document = json.loads((tmp_path / "packed.json").read_text())
    stored = document["steps"]["sweep"]["branches"]
    assert list(stored) == [f"sweep.{item}" for item in ITEMS]
    assert [b["status"] for b in stored.values()] == ["SUCCESS", "SUCCESS", "FAIL", "PROCESSING"]
    assert list(document["steps"]) == ["sweep", "after"]

    read = store.read("packed")
    assert isinstance(read.steps["sweep"].branches, PackedBranches)
    assert read == run_log
    assert read.failures() == [(f"sweep.{ITEMS[2]}.work", "ValueError: broken")]
    assert read.step("sweep.1.work").status == "SUCCESS"
    assert [s.internal_name for s in read.walk()][-1] == "after"


def test_a_big_map_is_written_piece_by_piece_as_one_document(tmp_path: Path) -> None:
    """A local store writes the document in pieces of a thousand items (never the whole
    log in memory at once): the file and its index are what one dump would make."""
    run_log = RunLog(run_id="big", status="SUCCESS")
    sweep = run_log.steps["sweep"] = StepLog(name="sweep", internal_name="sweep", step_type="map")
    branches = sweep.branches = PackedBranches()
    names = [f"sweep.{item}" for item in range(2500)]
    branches.placeholders(names)
    failed = branches.live("sweep.1999")
    assert failed is not None
    failed.status = "FAIL"
    branches.pack("sweep.1999")
    assert branches.live("sweep.2400") is not None  # one still running, as an object
    store = RunLogStore(tmp_path)
    store.create(RunLog(run_id="big"))
    store.write(run_log)

    data, index = dump_run_log(run_log)
    assert (tmp_path / "big.json").read_bytes() == data
    assert json.loads((tmp_path / ".big.index").read_text()) == json.loads(json.dumps(index))
    read = store.read("big")
    assert isinstance(read.steps["sweep"].branches, PackedBranches)
    assert list(read.steps["sweep"].branches) == names
    assert read.steps["sweep"].branches["sweep.1999"].status == "FAIL"
    assert read == run_log


def test_an_index_that_does_not_match_means_a_whole_read(tmp_path: Path) -> None:
    store = RunLogStore(tmp_path)
    run_log = a_map_run()
    store.create(RunLog(run_id="packed"))
    store.write(run_log)
    (tmp_path / ".packed.index").write_text('{"size": 1, "maps": {"sweep": [[0, 1]]}}')

    read = store.read("packed")
    assert not isinstance(read.steps["sweep"].branches, PackedBranches)
    assert read == run_log


def test_pydantic_dumps_read_packed_branches_back(tmp_path: Path) -> None:
    """``model_dump_json`` (a plug-in store's way to write) gives what the store writes."""
    run_log = a_map_run()
    store = RunLogStore(tmp_path)
    store.create(RunLog(run_id="packed"))
    store.write(run_log)

    stored = json.loads((tmp_path / "packed.json").read_text())
    assert json.loads(run_log.model_dump_json()) == stored
    assert run_log.model_dump(mode="json") == stored
    assert json.loads(run_log.steps["sweep"].model_dump_json()) == stored["steps"]["sweep"]
    assert isinstance(run_log.steps["sweep"].branches, PackedBranches)  # put back after


def test_a_map_inside_a_running_map_item_is_written_whole(tmp_path: Path) -> None:
    run_log = a_map_run()
    outer = run_log.steps["sweep"].branches.live("sweep.3")
    assert outer is not None
    inner = StepLog(name="inner", internal_name="sweep.3.inner", step_type="map")
    inner.branches = PackedBranches()
    inner.branches.placeholders(["sweep.3.inner.a", "sweep.3.inner.b"])
    outer.steps["sweep.3.inner"] = inner
    store = RunLogStore(tmp_path)
    store.create(RunLog(run_id="packed"))
    store.write(run_log)

    stored = json.loads((tmp_path / "packed.json").read_text())
    written = stored["steps"]["sweep"]["branches"]["sweep.3"]["steps"]["sweep.3.inner"]
    assert list(written["branches"]) == ["sweep.3.inner.a", "sweep.3.inner.b"]
    assert store.read("packed") == run_log
