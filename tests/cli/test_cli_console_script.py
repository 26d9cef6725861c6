"""The installed ``runnable-dask`` script, run as a separate process as a user runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from project_copy import project_root

ROOT = project_root()  # a copy: runs write nothing into the checkout
SCRIPT = Path(sys.executable).with_name("runnable-dask")


@pytest.fixture
def script() -> str:
    assert SCRIPT.exists(), f"{SCRIPT} is missing: pip install -e '.[test]'"
    return str(SCRIPT)


def run(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
    return subprocess.run(
        args, cwd=cwd, env=environ, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_execute_runs_and_show_as_separate_processes(
    script: str, flow: Path, local_config: Path, workdir: Path
) -> None:
    ok = run(
        script, "execute", "flow.py:passing", "-c", "local.yaml", "--run-id", "s1", cwd=workdir
    )
    assert ok.returncode == 0, ok.stderr
    failed = run(
        script, "execute", "flow.py:failing", "-c", "local.yaml", "--run-id", "s2", cwd=workdir
    )
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr
    assert "ValueError: boom: bad input" in failed.stdout

    listed = run(script, "runs", cwd=workdir)
    assert listed.returncode == 0, listed.stderr
    assert "s1" in listed.stdout and "s2" in listed.stdout

    shown = run(script, "show", "s2", cwd=workdir)
    assert shown.returncode == 0, shown.stderr
    assert "ValueError: boom: bad input" in shown.stdout


def test_usage_errors_exit_2(script: str, workdir: Path) -> None:
    result = run(script, "execute", cwd=workdir)
    assert result.returncode == 2
    assert "Missing argument 'FILE.py[:function]'" in result.stderr
    assert run(script, "--help", cwd=workdir).returncode == 0


@pytest.fixture
def root_run_id() -> Iterator[str]:
    """A run id in the repository's own stores, removed afterwards."""
    run_id = f"test-cli-{uuid.uuid4().hex[:8]}"
    yield run_id
    (ROOT / ".run_log_store" / f"{run_id}.json").unlink(missing_ok=True)
    shutil.rmtree(ROOT / ".catalog" / run_id, ignore_errors=True)


@pytest.mark.cluster
def test_the_parallel_example_on_the_default_dask_cluster(script: str, root_run_id: str) -> None:
    result = run(
        script, "execute", "examples/06-parallel/parallel.py", "--run-id", root_run_id,
        cwd=ROOT, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Run {root_run_id} SUCCESS" in result.stdout
    assert "LocalCluster" in result.stdout
    shown = run(script, "show", root_run_id, cwd=ROOT)
    for name in ("parallel_step", "branch1", "branch2", "hello_notebook", "continue_processing"):
        assert name in shown.stdout
