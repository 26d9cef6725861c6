"""Two runs storing into one step cache at the same moment lose and damage nothing.

Each run is a process of its own, as two users (or two schedulers) sharing a cache
folder are; their map items overlap, so both store some of the same keys.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from runnable_dask.stores.cache_store import CacheStore

SCRIPT = """
import sys
import time
from pathlib import Path

from runnable_dask import Map, Pipeline, PythonTask, pickled


def fit(item: int):
    with open("ran.txt", "a") as handle:
        handle.write(f"{item}\\n")
    return {"item": item, "weights": [item] * 50}, item / 10


def total(scores):
    return sum(scores)


if __name__ == "__main__":
    run_id, first, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    Path(f"{run_id}.yaml").write_text(f"items: {list(range(first, last))}\\n")
    Path(f"{run_id}.ready").touch()
    while not Path("go").exists():  # both runs start storing together
        time.sleep(0.01)
    fit_task = PythonTask(
        name="fit", function=fit, returns=[pickled("model"), "scores"], cache=True
    )
    grid = Map(name="grid", branch=Pipeline(steps=[fit_task]), iterate_on="items",
               iterate_as="item")
    sum_task = PythonTask(name="sum", function=total, returns=["total"])
    log = Pipeline(steps=[grid, sum_task]).execute(
        configuration_file="local.yaml", parameters_file=f"{run_id}.yaml", run_id=run_id
    )
    fits = [s for s in log.walk() if s.name == "fit"]
    cached = sum(s.attempts[-1].cached_from is not None for s in fits)
    print(f"{log.status} {len(fits)} fits, {cached} cached")
"""


def start(workdir: Path, run_id: str, first: int, last: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "fits.py", run_id, str(first), str(last)],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, err
    return out


@pytest.mark.timeout(300)
def test_two_runs_storing_at_once_lose_no_entry(workdir: Path) -> None:
    (workdir / "fits.py").write_text(SCRIPT, encoding="utf-8")
    (workdir / "local.yaml").write_text(
        "pipeline-executor: {type: local, config: {max_workers: 8}}\n", encoding="utf-8"
    )
    runs = [start(workdir, "one", 0, 300), start(workdir, "two", 150, 450)]
    while not all((workdir / f"{r}.ready").exists() for r in ("one", "two")):
        assert all(p.poll() is None for p in runs), [p.communicate() for p in runs]
        time.sleep(0.05)
    (workdir / "go").touch()
    outs = [finish(p) for p in runs]
    assert outs[0].splitlines()[-1].startswith("SUCCESS 300 fits")
    assert outs[1].splitlines()[-1].startswith("SUCCESS 300 fits")

    store = CacheStore(str(workdir / ".catalog" / ".cache"))
    entries = store.entries()
    assert "(unreadable)" not in {e.step for e in entries}
    assert {e.run_id for e in entries} == {"one", "two"}
    assert len(entries) == 450  # every item's fit, each key once however often stored
    assert len(list((workdir / ".catalog" / ".cache" / "packs").iterdir())) == 2

    (workdir / "ran.txt").unlink()
    again = finish(start(workdir, "three", 0, 450))  # "go" is there: it starts at once
    assert again.splitlines()[-1] == "SUCCESS 450 fits, 450 cached"
    assert not (workdir / "ran.txt").exists()  # every fit, and its pickled model, reused
