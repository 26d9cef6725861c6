"""A map's records on a real multi-process cluster: each finished item is kept compact by
the driver (as its JSON), yet the run log, ``show``, ``failures()`` and resume see every
item as before, and the stored log is readable while the map runs.
"""

from __future__ import annotations

import json
import pickle
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from distributed import LocalCluster

from runnable_dask import ExecutionFailedError, Map, Pipeline, PythonTask
from runnable_dask.cli import cli
from runnable_dask.stores.item_packs import ItemPack
from runnable_dask.stores.packed import PackedBranches
from runnable_dask.stores.runlog_store import RunLogStore

pytestmark = pytest.mark.cluster

N_ITEMS = 300
BAD = 7


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(
        n_workers=2, threads_per_worker=2, processes=True, host="127.0.0.1", dashboard_address=None
    ) as local_cluster:
        yield local_cluster


@pytest.fixture
def on_cluster(cluster: LocalCluster, workdir: Path) -> str:
    path = workdir / "dask.yaml"
    executor = {"type": "dask", "config": {"address": cluster.scheduler_address}}
    path.write_text(yaml.safe_dump({"pipeline-executor": executor}), encoding="utf-8")
    return str(path)


def params(workdir: Path, count: int) -> str:
    path = workdir / "params.yaml"
    path.write_text(yaml.safe_dump({"items": list(range(count)), "folder": str(workdir)}))
    return str(path)


# --- step functions (top level: worker processes import them by reference) ------------


def work(item: int, folder: str) -> int:
    """Counts its calls in a file per item; item BAD fails until ``fixed`` exists."""
    calls = Path(folder) / "calls" / str(item)
    calls.parent.mkdir(exist_ok=True)
    with calls.open("a") as handle:
        handle.write("x")
    if item == BAD and not (Path(folder) / "fixed").exists():
        raise ValueError(f"item {item} is broken")
    return item * 2


def wait_for_release(item: int, folder: str) -> int:
    """The last item waits until the test has read the log of the running map."""
    while item == 9 and not (Path(folder) / "release").exists():
        time.sleep(0.05)
    return item


def mapped(function: object) -> Pipeline:
    branch = Pipeline(steps=[PythonTask(name="work", function=function, returns=["out"])])
    return Pipeline(steps=[Map(name="m", branch=branch, iterate_on="items", iterate_as="item")])


def calls(workdir: Path) -> dict[int, int]:
    return {int(p.name): len(p.read_text()) for p in (workdir / "calls").iterdir()}


@pytest.mark.timeout(300)
def test_a_failing_item_is_named_kept_compact_and_alone_run_again(
    on_cluster: str, workdir: Path
) -> None:
    parameters = params(workdir, N_ITEMS)
    with pytest.raises(ExecutionFailedError, match=f"m.{BAD}.work"):
        mapped(work).execute(on_cluster, run_id="big", parameters_file=parameters)
    store = RunLogStore(workdir / ".run_log_store")
    [(name, message)] = store.read("big").failures()
    assert name == f"m.{BAD}.work"
    assert f"item {BAD} is broken" in message

    # Per-item status, in item order, in the stored document (runnable's layout).
    raw = json.loads((workdir / ".run_log_store" / "big.json").read_text())
    branches = raw["steps"]["m"]["branches"]
    assert list(branches) == [f"m.{i}" for i in range(N_ITEMS)]
    assert [b["status"] for b in branches.values()].count("SUCCESS") == N_ITEMS - 1
    assert branches[f"m.{BAD}"]["status"] == "FAIL"
    assert branches["m.0"]["steps"]["m.0.work"]["attempts"][0]["status"] == "SUCCESS"

    # `show` summarises the map: counts, the failed item, not 300 lines.
    shown = CliRunner().invoke(cli, ["show", "big", "--log-folder", str(store.location)])
    assert "300 branches, 1 failed" in shown.output
    assert f"m.{BAD}.work" in shown.output
    assert "... and 280 more (none failed)" in shown.output
    assert len(shown.output.splitlines()) < 80

    # Resume: only the failed item runs again.
    (workdir / "fixed").touch()
    resumed = mapped(work).execute(on_cluster, run_id="big", parameters_file=parameters)
    assert resumed.status == "SUCCESS"
    assert calls(workdir) == {i: 2 if i == BAD else 1 for i in range(N_ITEMS)}
    attempts = resumed.step(f"m.{BAD}.work").attempts
    assert [(a.attempt_number, a.status) for a in attempts] == [(1, "FAIL"), (2, "SUCCESS")]
    assert resumed.parameters["out"].value == [i * 2 for i in range(N_ITEMS)]

    # What the driver returns holds finished items compressed a hundred at a time (not
    # spans of the document it read), read back on access.
    held = resumed.steps["m"].branches
    assert isinstance(held, PackedBranches)
    packs = {id(value): value for value in dict.values(held) if isinstance(value, ItemPack)}
    assert len(packs) == N_ITEMS // 100
    assert not any(pack.spanned for pack in packs.values())
    assert [b.status for b in held.values()] == ["SUCCESS"] * N_ITEMS
    assert list(held.statuses()) == [(f"m.{i}", "SUCCESS") for i in range(N_ITEMS)]
    assert resumed == store.read("big")
    per_item = len(pickle.dumps(resumed)) / N_ITEMS
    assert per_item < 400, per_item


@pytest.mark.timeout(300)
def test_the_stored_log_shows_finished_items_while_the_map_runs(
    on_cluster: str, workdir: Path
) -> None:
    parameters = params(workdir, 10)
    store = RunLogStore(workdir / ".run_log_store")
    errors: list[BaseException] = []

    def execute() -> None:
        try:
            mapped(wait_for_release).execute(on_cluster, run_id="live", parameters_file=parameters)
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    driver = threading.Thread(target=execute)
    driver.start()
    try:
        statuses: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if store.exists("live"):
                log = store.read("live")
                if "m" in log.steps:
                    statuses = [b.status for b in log.steps["m"].branches.values()]
                    if statuses.count("SUCCESS") == 9:
                        break
            time.sleep(0.1)
        assert statuses.count("SUCCESS") == 9, statuses
        assert statuses[9] == "PROCESSING"
        assert log.status == "PROCESSING"
    finally:
        (workdir / "release").touch()
        driver.join(120)
    assert not errors
    assert store.read("live").status == "SUCCESS"
