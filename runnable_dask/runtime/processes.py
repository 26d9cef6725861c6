"""Child processes of steps: started in a session of their own, ended with their run.

A shell step's command may start processes of its own (``sleep 30 &``, a pipeline of
commands). Started in a new session, the command and everything it starts form one
process group, which is ended as a whole (SIGTERM, then SIGKILL after
:data:`GRACE` seconds) when the run is interrupted, when Dask cancels the step's task
(its driver went away), or when the worker closes. Without that they would be
re-parented to init and run on after the run has ended.

Each step that runs children registers itself here for as long as it runs, scratch
folders included, so :func:`stop_run` can wait until the step has cleaned up after
itself.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from runnable_dask.runtime.deadline import expired, remaining

GRACE = 2.0
"""Seconds a process group has to end after SIGTERM before it is killed."""
POLL = 0.2
"""Seconds between checks of whether a running command's step was abandoned."""
UNWIND = 5.0
"""Seconds :func:`stop_run` waits for stopped steps to clean up after themselves."""


@dataclass
class StepProcesses:
    """The children of one running step."""

    run_id: str
    step: str
    groups: list[tuple[int, str]] = field(default_factory=list)
    stopped: bool = False


_lock = threading.Condition()
_running: list[StepProcesses] = []


@contextlib.contextmanager
def tracked(run_id: str, step: str) -> Iterator[StepProcesses]:
    """Register a step's children while it runs; leave only once the step has cleaned up."""
    entry = StepProcesses(run_id, step)
    with _lock:
        _running.append(entry)
    try:
        yield entry
    finally:
        with _lock:
            _running.remove(entry)
            _lock.notify_all()


def run(
    entry: StepProcesses,
    argv: list[str],
    env: dict[str, str],
    abandoned: Callable[[], bool] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``argv`` in its own session; its output (stdout and stderr) as text.

    The group is ended when ``abandoned()`` says so, when :func:`stop_run` stops the
    step's run, or when this thread is interrupted; it is killed when the attempt's
    ``timeout`` passes (:mod:`runnable_dask.runtime.deadline`).
    """
    process = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    with _lock:
        entry.groups.append((process.pid, " ".join(argv)[:80]))
    try:
        while True:
            try:
                output, _ = process.communicate(timeout=min(POLL, remaining() or POLL))
                break
            except subprocess.TimeoutExpired:
                if entry.stopped or (abandoned is not None and abandoned()):
                    entry.stopped = True
                    end_group(process.pid)
                elif expired():
                    end_group(process.pid, grace=0)
    except BaseException:
        end_group(process.pid)
        raise
    finally:
        with _lock:
            entry.groups = [g for g in entry.groups if g[0] != process.pid]
        if process.poll() is None:
            process.kill()
    return subprocess.CompletedProcess(argv, process.wait(), output)


def end_group(pgid: int, grace: float = GRACE) -> bool:
    """SIGTERM the process group ``pgid``, then SIGKILL what is left after ``grace``.
    Whether there was a group to end."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    return True


def stop_run(run_id: str, unwind: float = UNWIND) -> list[dict[str, Any]]:
    """End the children of every step of ``run_id`` running in this process, and wait
    (up to ``unwind`` seconds) for those steps to clean up. What was ended, for the
    run log: one record per process group."""
    with _lock:
        entries = [e for e in _running if e.run_id == run_id or not run_id]
        for entry in entries:
            entry.stopped = True
        groups = [(e.step, pid, command) for e in entries for pid, command in e.groups]
    ended = [
        {"step": step, "pid": pid, "command": command, "host": os.uname().nodename}
        for step, pid, command in groups
        if end_group(pid)
    ]
    deadline = time.monotonic() + unwind
    with _lock:
        while any(e in _running for e in entries) and time.monotonic() < deadline:
            _lock.wait(timeout=0.05)
    return ended


atexit.register(stop_run, "", 1.0)  # whatever still runs when this process exits
