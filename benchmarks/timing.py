"""How runs are timed: the best of interleaved repeats, and processes under a time limit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def best_of(repeat: int, runs: dict[str, Callable[[], object]]) -> dict[str, float]:
    """The fastest of ``repeat`` timings of each run, taken in turn (a, b, a, b, ...), so
    that a busy moment on a shared machine slows both sides rather than one."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):
        for name, run in runs.items():
            began = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - began)
    return best


@dataclass(frozen=True)
class Finished:
    """A process that ended within its time limit."""

    seconds: float
    returncode: int
    stdout: str
    stderr: str


def run_process(
    command: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> Finished | None:
    """Run ``command`` in a session of its own; ``None`` when it took over ``timeout``
    seconds, after killing its whole process group (its worker processes too)."""
    began = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return None
    return Finished(time.perf_counter() - began, process.returncode, stdout, stderr)


def import_seconds(module: str, repeat: int, python: str = sys.executable) -> float:
    """The best time of ``import module`` in a fresh interpreter (start-up excluded)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    timings = []
    for _ in range(repeat):
        done = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, check=True, timeout=60
        )
        timings.append(float(done.stdout.strip().splitlines()[-1]))
    return min(timings)
