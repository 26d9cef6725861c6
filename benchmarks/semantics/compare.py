"""Run each semantics case with runnable and with runnable_dask; compare the outcomes.

``python benchmarks/semantics/compare.py --runnable-python /path/to/venv/bin/python``
where that interpreter has ``runnable==0.50.0`` installed. For every case it prints the
run status, the statuses of the top-level steps and the final parameters of both runs,
and whether they agree. runnable's layout is kept, so both run logs read the same way.
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


def outcome(python: str, library: str, case: str, workdir: Path) -> dict[str, Any]:
    run_id = f"{library}-{case}".replace("_", "-")
    params = workdir / "params.yaml"
    params.write_text(PARAMETERS)
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
        "steps": {name: step["status"] for name, step in run_log["steps"].items()},
        "branches": {
            branch: {n: s["status"] for n, s in info["steps"].items()}
            for step in run_log["steps"].values()
            for branch, info in (step.get("branches") or {}).items()
        },
        "parameters": {name: p["value"] for name, p in run_log["parameters"].items()},
    }


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
