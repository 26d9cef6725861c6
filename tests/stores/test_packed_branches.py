"""A map's packed branches in a stored run log: written in runnable's layout, read back
packed through the index, and read whole when the index does not match."""

from __future__ import annotations

import copy
import itertools
import json
import pickle
import random
from pathlib import Path

from runnable_dask.stores.item_packs import ItemPack
from runnable_dask.stores.packed import NOT_BEGUN, PackedBranches, dump_run_log, index_json
from runnable_dask.stores.runlog import Attempt, RunLog, Status, StepLog
from runnable_dask.stores.runlog_store import RunLogStore

ITEMS = ["0", "1 café\tünï", 'odd "name" {with} \\ braces', "3"]


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
    assert read.step(f"sweep.{ITEMS[1]}.work").status == "SUCCESS"
    assert [s.internal_name for s in read.walk()][-1] == "after"


def finish(branches: PackedBranches, item: int, status: Status = "SUCCESS") -> None:
    """Map item ``item`` ends with one attempt that ran at second ``item % 60``."""
    branch = branches.live(f"sweep.{item}")
    assert branch is not None
    name = f"sweep.{item}.work"
    stamp = f"2026-01-01T00:{item // 60 % 60:02d}:{item % 60:02d}"
    attempt = Attempt(status=status, start_time=stamp, end_time=stamp)
    attempt.cached_from = "earlier" if item == 5 else None
    branch.steps[name] = StepLog(name="work", internal_name=name, status=status, attempts=[attempt])
    branch.status = status
    branches.pack(f"sweep.{item}")


def a_big_map() -> RunLog:
    """2,500 items listed: 250 finished (two packs of a hundred, fifty as JSON; items 150
    and 1999 failed, item 5 from the step cache), one running (2400), the others not
    begun."""
    run_log = RunLog(run_id="big", status="SUCCESS")
    sweep = run_log.steps["sweep"] = StepLog(name="sweep", internal_name="sweep", step_type="map")
    branches = sweep.branches = PackedBranches()
    branches.placeholders([f"sweep.{item}" for item in range(2500)])
    for item in [*range(249), 1999]:
        finish(branches, item, "FAIL" if item in (150, 1999) else "SUCCESS")
    running = branches.live("sweep.2400")  # one still running, as an object
    assert running is not None
    running.steps["sweep.2400.work"] = StepLog(name="work", internal_name="sweep.2400.work")
    return run_log


def test_a_big_map_is_written_piece_by_piece_as_one_document(tmp_path: Path) -> None:
    """A local store writes the document in pieces of a thousand items (never the whole
    log in memory at once): the file and its index are what one dump would make."""
    run_log = a_big_map()
    names = [f"sweep.{item}" for item in range(2500)]
    store = RunLogStore(tmp_path)
    store.create(RunLog(run_id="big"))
    store.write(run_log)

    data, index = dump_run_log(run_log)
    assert (tmp_path / "big.json").read_bytes() == data
    written = json.loads((tmp_path / ".big.index").read_text())
    assert written == json.loads(index_json(index))
    start, end = written["maps"]["sweep"][1]
    assert json.loads(data[start:end]) == json.loads(
        run_log.steps["sweep"].branches["sweep.1"].model_dump_json()
    )
    assert json.loads(data) == json.loads(run_log.model_dump_json())  # as pydantic dumps it
    read = store.read("big")
    assert isinstance(read.steps["sweep"].branches, PackedBranches)
    assert list(read.steps["sweep"].branches) == names
    assert read.steps["sweep"].branches["sweep.1999"].status == "FAIL"
    assert read == run_log


def test_finished_items_are_compressed_and_answer_without_being_read(tmp_path: Path) -> None:
    """Packs of a hundred finished items know each one's status, whether a failure is
    inside and the attempts' times; a read log's items are spans of its document, which
    a resumed run compresses in turn: every way of holding an item reads the same."""
    run_log = a_big_map()
    branches = run_log.steps["sweep"].branches
    assert isinstance(branches, PackedBranches)
    held = [dict.__getitem__(branches, f"sweep.{item}") for item in (0, 199, 200, 1999, 2400)]
    assert isinstance(held[0], ItemPack) and held[0] is not held[1] is not held[2]
    assert isinstance(held[1], ItemPack) and not held[1].spanned
    assert [type(value).__name__ for value in held[2:]] == ["bytes", "bytes", "BranchLog"]
    assert dict.__getitem__(branches, "sweep.2000") is NOT_BEGUN
    store = RunLogStore(tmp_path)
    store.create(RunLog(run_id="big"))
    store.write(run_log)
    read = store.read("big")
    spans = read.steps["sweep"].branches
    assert isinstance(spans, PackedBranches)
    assert isinstance(dict.__getitem__(spans, "sweep.0"), ItemPack)
    assert dict.__getitem__(spans, "sweep.0").spanned
    compressed = copy.copy(spans)
    compressed.compact()
    assert not dict.__getitem__(compressed, "sweep.2499").spanned
    unpickled = pickle.loads(pickle.dumps(branches))
    assert dict.__getitem__(unpickled, "sweep.2000") is NOT_BEGUN

    statuses = [("SUCCESS" if i < 249 else "PROCESSING", i) for i in range(2500)]
    statuses[150] = statuses[1999] = ("FAIL", 0)
    for held_as in (branches, spans, compressed, unpickled):
        assert [status for _, status in held_as.statuses()] == [s for s, _ in statuses]
        failed = [b.internal_name for b in held_as.with_failures() if b.status != "PROCESSING"]
        assert failed == ["sweep.150", "sweep.1999"]
        assert held_as.packed_times() == ("2026-01-01T00:00:00", "2026-01-01T00:33:19")
        assert held_as["sweep.7"] == branches["sweep.7"]
        assert held_as["sweep.150"].steps["sweep.150.work"].status == "FAIL"
        assert held_as.stored_json("sweep.2000") == b""  # listed, not begun
        assert json.loads(held_as.stored_json("sweep.7") or b"") == branches["sweep.7"].model_dump()
        assert held_as.any_cached()
        assert not dict.__getitem__(held_as, "sweep.150").cached()  # the second pack
    assert read == run_log
    assert spans.unfinished() == ["sweep.2400"]  # begun, not ended: the recorder closes it
    assert dump_run_log(read)[0] == dump_run_log(run_log)[0]


def test_a_failed_maps_failures_are_found_without_reading_the_other_items(
    tmp_path: Path, items_read: list[str]
) -> None:
    """``show`` and the end of a failed run list the failures: of a map's packed items,
    only the failed ones are unpacked (a map of 100,000 with one failure read 77,000
    items to list it)."""
    run_log = a_big_map()
    run_log.status = "FAIL"
    run_log.steps["sweep"].status = "FAIL"
    store = RunLogStore(tmp_path)
    store.create(RunLog(run_id="big"))
    store.write(run_log)
    read = store.read("big")
    items_read.clear()
    assert read.failures() == [("sweep.150.work", ""), ("sweep.1999.work", "")]
    assert set(items_read) == {"sweep.150", "sweep.1999"}


def test_items_that_finished_in_any_order_are_written_in_the_maps_order(tmp_path: Path) -> None:
    """On a cluster a map's items finish in no particular order, so each pack of a
    hundred holds items from all over the map: the document still lists them in the
    map's order, each with its own record."""
    run_log = RunLog(run_id="shuffled", status="SUCCESS")
    sweep = run_log.steps["sweep"] = StepLog(name="sweep", internal_name="sweep", step_type="map")
    branches = sweep.branches = PackedBranches()
    names = [f"sweep.{item}" for item in range(1000)]
    branches.placeholders(names)
    order = list(range(1000))
    random.Random(15).shuffle(order)
    for item in order:
        finish(branches, item, "FAIL" if item == 321 else "SUCCESS")
    packs = {id(dict.__getitem__(branches, f"sweep.{item}")) for item in range(0, 1000, 97)}
    assert len(packs) > 5  # the packs are spread over the map
    statuses = list(branches.statuses())  # each pack read once, the map's order kept
    assert [name for name, _ in statuses] == names
    assert [name for name, status in statuses if status != "SUCCESS"] == ["sweep.321"]
    assert [branch.internal_name for branch in branches.with_failures()] == ["sweep.321"]
    assert branches.unfinished() == []
    store = RunLogStore(tmp_path)
    store.create(RunLog(run_id="shuffled"))
    store.write(run_log)

    document = json.loads((tmp_path / "shuffled.json").read_text())
    stored = document["steps"]["sweep"]["branches"]
    assert list(stored) == names
    assert stored["sweep.321"]["status"] == "FAIL"
    assert document == json.loads(run_log.model_dump_json())
    assert [
        name
        for name, status in store.read("shuffled").steps["sweep"].branches.statuses()
        if status == "FAIL"
    ] == ["sweep.321"]


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


def test_walking_a_big_map_reads_its_items_as_it_goes(
    tmp_path: Path, items_read: list[str]
) -> None:
    """``RunLog.walk`` (``results.steps``, ``results.metrics``) reads a packed item when it
    comes to it: the first steps come before the map's other items are read, and the
    walk never holds them all (listing a map of 100,000 items' steps took 1.2 GB)."""
    store = RunLogStore(tmp_path)
    store.create(RunLog(run_id="big"))
    store.write(a_big_map())
    read = store.read("big")
    items_read.clear()
    first = [step.internal_name for step in itertools.islice(read.walk(), 3)]
    assert first == ["sweep", "sweep.0.work", "sweep.1.work"]
    assert items_read == ["sweep.0", "sweep.1"]
    names = [step.internal_name for step in read.walk()]
    assert names[:3] == first and len(names) == 1 + 250 + 1  # the map, 250 ended, 1 running
