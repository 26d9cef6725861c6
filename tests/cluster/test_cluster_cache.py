"""Step caching on a cluster: workers in their own folder read and write the shared cache.

The pipeline is a script run as a user runs it, against ``dask scheduler`` and two
``dask worker`` processes; its code reaches the workers by value.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from runnable_dask.stores.cache_store import CacheStore

from .conftest import DaskProcesses

pytestmark = pytest.mark.cluster

SCRIPT = """
from pathlib import Path

from runnable_dask import Catalog, Map, Pipeline, PythonTask, pickled


def fit(item: int, ran_file: str):
    with open(ran_file, "a") as handle:
        handle.write(f"fit {item}\\n")
    Path("fits").mkdir(exist_ok=True)
    Path(f"fits/{item}.txt").write_text(f"model {item}")
    return {"item": item, "weights": [item] * 3}, item * 0.1


def best(models, scores):
    return max(scores), sum(m["item"] for m in models)


def main():
    fit_task = PythonTask(
        name="fit",
        function=fit,
        returns=[pickled("models"), "scores"],
        catalog=Catalog(put=["fits/*"]),
        cache=True,
    )
    branch = Pipeline(steps=[fit_task])
    grid = Map(name="grid", branch=branch, iterate_on="items", iterate_as="item")
    pick = PythonTask(name="pick", function=best, returns=["top", "total"])
    return Pipeline(steps=[grid, pick]).execute()


if __name__ == "__main__":
    main()
"""


# A sweep whose grid is made by a step of the project, as objects of the project's own
# class: the workers get the class by value (they run in another folder).
PROJECT_STEPS = """
from dataclasses import dataclass


@dataclass(frozen=True)
class Config:
    item: int
    depth: int


def make(items):
    return [Config(item, depth=3) for item in items]


def fit(config, ran_file):
    with open(ran_file, "a") as handle:
        handle.write(f"fit {config.item}\\n")
    return config.item * 0.1
"""

PROJECT_FLOW = """
from runnable_dask import Map, Pipeline, PythonTask, pickled
from sweeplib.steps import fit, make

if __name__ == "__main__":
    fit_task = PythonTask(name="fit", function=fit, returns=["score"], cache=True)
    grid = Map(
        name="grid", branch=Pipeline(steps=[fit_task]), iterate_on="configs", iterate_as="config"
    )
    make_task = PythonTask(name="make", function=make, returns=[pickled("configs")], cache=True)
    Pipeline(steps=[make_task, grid]).execute()
"""


def run_script(
    tmp_path: Path,
    cluster: DaskProcesses,
    run_id: str,
    items: list[int],
    config: Path | None = None,
) -> dict[str, Any]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
    environ["RUNNABLE_CONFIGURATION_FILE"] = str(config or cluster.config(tmp_path))
    environ["RUNNABLE_RUN_ID"] = run_id
    environ["RUNNABLE_PRM_items"] = json.dumps(items)
    environ["RUNNABLE_PRM_ran_file"] = str(tmp_path / "ran.txt")
    process = subprocess.run(
        [sys.executable, "flow.py"],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert process.returncode == 0, f"{process.stdout}\n{process.stderr}"
    run_log = json.loads((tmp_path / "run_logs" / f"{run_id}.json").read_text())
    run_log["stdout"] = process.stdout
    return run_log


def fits(run_log: dict[str, Any]) -> dict[str, str | None]:
    branches = run_log["steps"]["grid"]["branches"].values()
    return {
        name: step["attempts"][-1]["cached_from"]
        for branch in branches
        for name, step in branch["steps"].items()
        if step["name"] == "fit"
    }


@pytest.mark.timeout(300)
def test_cached_fits_on_scheduler_and_workers(tcp_cluster: DaskProcesses, tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(SCRIPT, encoding="utf-8")

    run_script(tmp_path, tcp_cluster, "first", [1, 2])
    again = run_script(tmp_path, tcp_cluster, "again", [1, 2])
    more = run_script(tmp_path, tcp_cluster, "more", [1, 2, 3])

    ran = (tmp_path / "ran.txt").read_text().splitlines()
    assert sorted(ran) == ["fit 1", "fit 2", "fit 3"]  # each configuration fitted once
    assert fits(again) == {"grid.1.fit": "first", "grid.2.fit": "first"}
    assert fits(more) == {"grid.1.fit": "first", "grid.2.fit": "first", "grid.3.fit": None}
    assert "Cached:    2 of 3 tasks came from the cache (run first)" in again["stdout"]
    # The pickled models came back from the cache and went on to the next step.
    assert again["parameters"]["total"]["value"] == 3
    assert more["parameters"]["total"]["value"] == 6
    # The put files are in each run's catalog, restored by the workers.
    catalog = tmp_path / "catalog" / "again" / "fits"
    assert sorted(p.name for p in catalog.iterdir()) == ["1.txt", "2.txt"]
    # The workers ran in their own folder; the cache is beside the shared catalog.
    assert len(CacheStore(str(tmp_path / "catalog" / ".cache")).entries()) == 3


@pytest.mark.timeout(300)
def test_one_more_item_of_project_objects_fits_that_item_alone(
    tcp_cluster: DaskProcesses, tmp_path: Path
) -> None:
    """The grid is made again (its list changed), by another driving process each run, of
    objects whose class reaches the workers by value: the items seen before keep their
    digests, so their fits come from the cache."""
    (tmp_path / "sweeplib").mkdir()
    (tmp_path / "sweeplib" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "sweeplib" / "steps.py").write_text(PROJECT_STEPS, encoding="utf-8")
    (tmp_path / "flow.py").write_text(PROJECT_FLOW, encoding="utf-8")

    run_script(tmp_path, tcp_cluster, "first", [1, 2])
    more = run_script(tmp_path, tcp_cluster, "more", [1, 2, 3])

    ran = (tmp_path / "ran.txt").read_text().splitlines()
    assert sorted(ran) == ["fit 1", "fit 2", "fit 3"]
    assert more["steps"]["make"]["attempts"][-1]["cached_from"] is None  # made again
    assert fits(more) == {
        "grid.Config(item=1, depth=3).fit": "first",
        "grid.Config(item=2, depth=3).fit": "first",
        "grid.Config(item=3, depth=3).fit": None,
    }


@pytest.mark.timeout(300)
def test_a_worker_that_cannot_store_an_entry_warns_in_the_step_log(
    tcp_cluster: DaskProcesses, tmp_path: Path
) -> None:
    """The cache's location is under a file, so no worker can store an entry there (a
    read-only folder would not do: these tests may run as root)."""
    (tmp_path / "flow.py").write_text(SCRIPT, encoding="utf-8")
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    config = tcp_cluster.config(tmp_path)
    settings = yaml.safe_load(config.read_text(encoding="utf-8"))
    settings["cache"] = {"location": str(tmp_path / "a-file" / "cache")}
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")

    first = run_script(tmp_path, tcp_cluster, "first", [1, 2], config)
    again = run_script(tmp_path, tcp_cluster, "again", [1, 2], config)

    assert first["status"] == again["status"] == "SUCCESS"
    assert again["parameters"]["total"]["value"] == 3
    ran = (tmp_path / "ran.txt").read_text().splitlines()
    assert sorted(ran) == ["fit 1", "fit 1", "fit 2", "fit 2"]  # nothing stored, so both ran
    warning = "runnable-dask: warning: not cached: the entry could not be stored (NotADirectory"
    for item in (1, 2):  # at the top of the step's log, where its output is read
        log = tmp_path / "catalog" / "again" / "logs" / f"grid.{item}.fit.execution.log"
        notes = [line for line in log.read_text(encoding="utf-8").splitlines() if line]
        assert all(line.startswith("runnable-dask: warning: ") for line in notes), notes
        assert any(line.startswith(warning) for line in notes), notes
