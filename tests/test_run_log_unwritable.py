"""A run-log store that cannot be written (issue 17, point 6), with real driver processes.

The tests run as root here, and root writes through ``chmod``; so the store is made
unwritable in ways that stop root too: a log folder whose parent is a regular file, and,
mid-run, the folder marked immutable with ``chattr +i`` (skipped where the file system or
the container does not allow it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PIPE = """
from pathlib import Path

from runnable_dask import Pipeline, PythonTask, ShellTask


def slow():
    import time

    time.sleep(1)


def last():
    Path("last-ran").write_text("yes")


def main():
    Pipeline(
        steps=[
            ShellTask(
                name="freeze",
                command="[ -n \\"$FREEZE\\" ] && [ ! -e frozen-once ] && touch frozen-once "
                "&& chattr +i .run_log_store || true",
            ),
            PythonTask(name="slow", function=slow),
            PythonTask(name="last", function=last),
        ]
    ).execute(configuration_file="config.yaml", run_id="mid")


if __name__ == "__main__":
    main()
"""


def _write_pipe(workdir: Path, log_folder: str) -> Path:
    (workdir / "config.yaml").write_text(
        "pipeline-executor:\n  type: local\n"
        f"run-log-store:\n  type: file-system\n  config: {{log_folder: {log_folder}}}\n"
    )
    path = workdir / "pipe.py"
    path.write_text(PIPE)
    return path


def _drive(pipe: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(pipe), *args],
        cwd=pipe.parent,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_log_folder_that_cannot_be_made_is_refused_before_any_step(workdir: Path) -> None:
    (workdir / "afile").write_text("a regular file, not a folder")
    result = _drive(_write_pipe(workdir, "afile/logs"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "RunLogStoreError: cannot write the run log at afile/logs (NotADirectoryError: Not "
        "a directory); make afile/logs a folder this process can write, or choose another "
        "with run-log-store.config.log_folder; no step has run"
    )
    assert not (workdir / "frozen-once").exists() and not (workdir / ".catalog").exists()


@pytest.fixture
def immutable_cleanup(workdir: Path) -> Iterator[Path]:
    """Where ``chattr +i`` works here; the flag is always removed afterwards."""
    probe = workdir / "probe"
    probe.mkdir()
    if (
        subprocess.run(["chattr", "+i", str(probe)], capture_output=True, check=False).returncode
        != 0
    ):
        pytest.skip("chattr +i is not permitted here: no way to stop root writing a folder")
    subprocess.run(["chattr", "-i", str(probe)], check=True)
    yield workdir / ".run_log_store"
    subprocess.run(["chattr", "-i", str(workdir / ".run_log_store")], check=False)


@pytest.mark.timeout(180)
def test_a_write_that_fails_mid_run_stops_the_run_and_names_the_last_good_log(
    workdir: Path, immutable_cleanup: Path
) -> None:
    pipe = _write_pipe(workdir, ".run_log_store")
    result = _drive(pipe, FREEZE="1")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "Run mid FAIL" in result.stdout
    assert result.stderr.startswith(
        "RunLogStoreError: cannot write the run log at .run_log_store/mid.json (PermissionError"
    )
    assert (
        "The run was stopped: a run that cannot be recorded does not go on. The last good run "
        "log is .run_log_store/mid.json, as written at "
    ) in result.stderr
    assert "`runnable-dask retry mid` resumes the run" in result.stderr
    assert not (workdir / "last-ran").exists()  # the run did not go on
    stored = json.loads((immutable_cleanup / "mid.json").read_text())  # intact, readable
    assert stored["run_id"] == "mid"

    subprocess.run(["chattr", "-i", str(immutable_cleanup)], check=True)
    retry = Path(sys.executable).parent / "runnable-dask"
    resumed = subprocess.run(
        [str(retry), "retry", "mid"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert (workdir / "last-ran").read_text() == "yes"
    final = json.loads((immutable_cleanup / "mid.json").read_text())
    assert final["status"] == "SUCCESS"
    assert list(final["steps"]) == ["freeze", "slow", "last", "success"]
