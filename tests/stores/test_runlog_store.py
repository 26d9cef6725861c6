"""The run-log store: one JSON file per run, written atomically, never overwritten."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from runnable_dask.exceptions import RunLogExistsError
from runnable_dask.stores.runlog import Attempt, BranchLog, ParameterRecord, RunLog, StepLog
from runnable_dask.stores.runlog_store import RunLogNotFoundError, RunLogStore


def sample(run_id: str = "r1", steps: int = 1) -> RunLog:
    return RunLog(
        run_id=run_id,
        dag_hash="abc",
        tag="nightly",
        status="PROCESSING",
        parameters={"x": ParameterRecord(kind="json", value=1)},
        steps={
            f"step{i}": StepLog(
                name=f"step{i}",
                internal_name=f"step{i}",
                status="SUCCESS",
                attempts=[Attempt(status="SUCCESS", message="m" * 200)],
            )
            for i in range(steps)
        },
    )


def test_create_then_read_back(tmp_path: Path) -> None:
    store = RunLogStore(tmp_path / "logs")
    run_log = sample()
    store.create(run_log)
    path = Path(store.url("r1"))
    assert path == tmp_path / "logs" / "r1.json"
    assert store.read("r1") == run_log
    on_disk = json.loads(path.read_text())
    assert set(on_disk) == {
        "run_id", "dag_hash", "tag", "status", "steps", "parameters", "run_config"
    }  # fmt: skip


def test_create_refuses_an_existing_id_and_keeps_the_file(tmp_path: Path) -> None:
    store = RunLogStore(tmp_path)
    store.create(sample())
    before = Path(store.url("r1")).read_bytes()
    with pytest.raises(RunLogExistsError, match=r"run log for run id 'r1' exists already"):
        store.create(sample().model_copy(update={"tag": "other"}))
    assert Path(store.url("r1")).read_bytes() == before


def test_write_replaces_the_document(tmp_path: Path) -> None:
    store = RunLogStore(tmp_path)
    run_log = sample()
    store.create(run_log)
    run_log.status = "SUCCESS"
    run_log.steps["late"] = StepLog(
        name="late",
        internal_name="late",
        branches={"late.a": BranchLog(internal_name="late.a", status="SUCCESS")},
    )
    store.write(run_log)
    again = store.read("r1")
    assert again.status == "SUCCESS"
    assert again.steps["late"].branches["late.a"].status == "SUCCESS"


def test_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = RunLogStore(tmp_path)
    run_log = sample()
    store.create(run_log)
    for _ in range(5):
        store.write(run_log)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r1.json"]


def test_a_reader_never_sees_a_partial_run_log(tmp_path: Path) -> None:
    store = RunLogStore(tmp_path)
    small, large = sample(steps=1), sample(steps=300)
    store.create(small)
    done = threading.Event()
    bad: list[str] = []
    reads = 0

    def read_repeatedly() -> None:
        nonlocal reads
        while not done.is_set():
            text = Path(store.url("r1")).read_text(encoding="utf-8")
            reads += 1
            try:
                json.loads(text)
            except ValueError:
                bad.append(text[-80:])

    reader = threading.Thread(target=read_repeatedly)
    reader.start()
    try:
        for i in range(100):
            store.write(large if i % 2 else small)
    finally:
        done.set()
        reader.join()
    assert reads > 0
    assert bad == []


def test_reading_an_unknown_id_names_it(tmp_path: Path) -> None:
    with pytest.raises(RunLogNotFoundError, match=r"no run log for run id 'ghost'"):
        RunLogStore(tmp_path).read("ghost")


def test_walk_step_and_failures_cover_branches() -> None:
    inner = StepLog(name="work", internal_name="fan.a.work", status="FAIL", message="boom")
    fan = StepLog(
        name="fan",
        internal_name="fan",
        step_type="parallel",
        status="FAIL",
        branches={"fan.a": BranchLog(internal_name="fan.a", steps={"fan.a.work": inner})},
    )
    run_log = RunLog(
        run_id="r", steps={"fan": fan, "after": StepLog(name="a", internal_name="after")}
    )
    assert [s.internal_name for s in run_log.walk()] == ["fan", "fan.a.work", "after"]
    assert run_log.step("fan.a.work") is inner
    assert run_log.failures() == [("fan.a.work", "boom")]
    with pytest.raises(KeyError, match="no step 'nope'"):
        run_log.step("nope")
