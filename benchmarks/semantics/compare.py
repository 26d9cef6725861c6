"""Run each semantics case with runnable and with runnable_dask; compare the outcomes.

``python benchmarks/semantics/compare.py --runnable-python /path/to/venv/bin/python``
where that interpreter has ``runnable==0.50.0`` installed. For every case it prints the
run status, the status of every step (branches of Parallel, Map, Conditional and Loop
and the steps inside them included, by internal name: ``sweep.1.train``, ``loop.0.count``)
and the final parameters of both runs, and whether they agree. runnable's layout is kept,
so both run logs read the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from pipelines import CASES

HERE = Path(__file__).resolve().parent
PARAMETERS = "x: 3\nfactor: 1.5\n"
# Cases that map over a list from the parameters file get it added to the file.
EXTRA_PARAMETERS = {
    "map_parameters_file": "items: [1, 2, 3]\n",
    "map_one_fails": "items: [1, 2, 3]\n",
}

# What is compared, and what is not. Where runnable_dask differs from runnable 0.50 by
# design ("Ours" in shared/reference/runnable-semantics.md), the difference lies outside
# what is compared, so nothing is normalised away:
# - branch scope: runnable starts a branch with no parameters, ours gives it the parent's.
#   The branches' own ``parameters`` are not compared (a loop iteration's also differ:
#   runnable records the whole carried scope, ours what the iterations set), and the
#   branch functions here read only the map item or nothing, so both bind the same
#   arguments.
# - kinds: only parameter values are compared, not their kind (json, metric, object).
# - the loop index: ours also binds it as a parameter inside the loop; it is not left in
#   the final parameters, so it needs no exception.


def outcome(python: str, library: str, case: str, workdir: Path) -> dict[str, Any]:
    run_id = f"{library}-{case}".replace("_", "-")
    params = workdir / "params.yaml"
    params.write_text(PARAMETERS + EXTRA_PARAMETERS.get(case, ""))
    shutil.copy(HERE / "pipelines.py", workdir)  # runnable needs its script in the cwd
    env = {
        **os.environ,
        "RUNNABLE_RUN_ID": run_id,
        "RUNNABLE_PRM_factor": "2.0",
        "SEMANTICS_LIBRARY": library,
    }
    env.pop("RUNNABLE_CONFIGURATION_FILE", None)
    done = subprocess.run(
        [python, "pipelines.py", case, str(params)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    log_file = workdir / ".run_log_store" / f"{run_id}.json"
    if not log_file.exists():
        return {"error": (done.stdout + done.stderr)[-600:]}
    run_log = json.loads(log_file.read_text())
    return {
        "exit": "ok" if done.returncode == 0 else "error",
        "status": run_log["status"],
        "steps": statuses(run_log["steps"]),
        "parameters": {name: p["value"] for name, p in run_log["parameters"].items()},
    }


def statuses(steps: dict[str, Any]) -> dict[str, str]:
    """Internal name -> status of every step and branch, nested ones included."""
    found = {}
    for name, step in steps.items():
        found[step.get("internal_name", name)] = step["status"]
        for branch, info in (step.get("branches") or {}).items():
            found[branch] = info["status"]
            found.update(statuses(info["steps"]))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runnable-python", required=True)
    args = parser.parse_args()
    agree = 0
    for case in CASES:
        with tempfile.TemporaryDirectory() as folder:
            theirs = outcome(args.runnable_python, "runnable", case, Path(folder))
        with tempfile.TemporaryDirectory() as folder:
            ours = outcome(sys.executable, "runnable_dask", case, Path(folder))
        same = theirs == ours
        agree += same
        print(f"{case}: {'same' if same else 'DIFFERENT'}")
        print(f"  runnable      {json.dumps(theirs, sort_keys=True)}")
        print(f"  runnable_dask {json.dumps(ours, sort_keys=True)}")
    print(f"{agree} of {len(CASES)} cases agree")


if __name__ == "__main__":
    main()
