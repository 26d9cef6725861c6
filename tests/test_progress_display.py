"""A map and a wide Parallel show as progress bars in a terminal (a real pseudo-terminal
here), and as plain lines when the output is captured (CI logs)."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

FLOW = textwrap.dedent(
    """
    import time

    from runnable_dask import Map, Parallel, Pipeline, PythonTask


    def work():
        time.sleep(0.2)


    def square(x: int):
        if x == 7:
            raise ValueError("seven is refused")
        return x * x


    if __name__ == "__main__":
        work_branch = Pipeline(steps=[PythonTask(name="work", function=work)])
        wide = Parallel(name="wide", branches={f"b{i}": work_branch for i in range(12)})
        squares = Map(
            name="squares",
            branch=Pipeline(steps=[PythonTask(name="sq", function=square, returns=["y"])]),
            iterate_on="xs",
            iterate_as="x",
        )
        Pipeline(steps=[wide, squares]).execute()
    """
)


@pytest.fixture
def flow(workdir: Path) -> Path:
    (workdir / "flow.py").write_text(FLOW, encoding="utf-8")
    (workdir / "config.yaml").write_text("pipeline-executor:\n  type: local\n", encoding="utf-8")
    (workdir / "params.yaml").write_text(f"xs: {list(range(200))}\n", encoding="utf-8")
    return workdir


def environment(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
    env |= {
        "RUNNABLE_CONFIGURATION_FILE": str(workdir / "config.yaml"),
        "RUNNABLE_PARAMETERS_FILE": str(workdir / "params.yaml"),
        "TERM": "xterm",
        "COLUMNS": "120",
    }
    env.pop("NO_COLOR", None)
    return env


def run_in_terminal(workdir: Path) -> str:
    """Run flow.py with its output on a pseudo-terminal; everything it wrote."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "flow.py"],
        cwd=workdir,
        env=environment(workdir),
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    output = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        output += chunk
    process.wait(timeout=60)
    os.close(master)
    return output.decode("utf-8", "replace")


@pytest.mark.timeout(120)
def test_a_terminal_shows_bars_instead_of_a_line_per_branch(flow: Path) -> None:
    output = run_in_terminal(flow)
    assert "of 12 branches" in output  # the wide Parallel's bar
    assert "of 200 iterations" in output  # the map's bar
    assert "wide.b3.work" not in output  # no line per branch
    assert "squares.7.sq (" in output and "seven is refused" in output  # failures print
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output)
    assert re.search(r"^Run \S+ FAIL in ", plain, re.MULTILINE)  # then the summary


@pytest.mark.timeout(120)
def test_captured_output_keeps_plain_lines(flow: Path) -> None:
    done = subprocess.run(
        [sys.executable, "flow.py"],
        cwd=flow,
        env=environment(flow),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    for branch in range(12):
        assert f"done     wide.b{branch}.work (" in done.stdout
    assert "started  squares (200 iterations)" in done.stdout
    assert "FAILED   squares.7.sq (" in done.stdout
    assert "\x1b[" not in done.stdout  # no colours, no cursor movement
    assert "running, of 200" not in done.stdout  # no bar
