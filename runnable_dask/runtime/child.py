"""Call a step's function in a child interpreter that can be killed at its deadline.

A thread cannot be stopped from outside in Python, so a ``PythonTask`` with a ``timeout``
runs in a fresh interpreter (``subprocess``, in a session of its own; not
``multiprocessing``, whose children a daemonic Dask worker process may not have, and
not a fork of a worker whose other threads may hold locks). The function and its bound
arguments go to it pickled by cloudpickle (closures and ``__main__`` functions by value,
importable ones by reference, with this process's ``sys.path`` and working folder); its
return value and any exception come back the same way, and what it prints is copied into
the step's log. At the deadline its process group is killed.

Run as a script, this module is the child's side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import Any

PATH_ENV = "RUNNABLE_DASK_CHILD_SYS_PATH"


class ChildProcessLostError(Exception):
    """The child interpreter ended without handing back a result (killed, or exited)."""


class RemoteTraceback(Exception):
    """The child's traceback, shown as the cause of the exception it raised."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


def call_in_child(function: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """``function(**kwargs)`` in a child interpreter, stopped at the attempt's deadline."""
    import cloudpickle

    from runnable_dask.runtime.deadline import current_limit, kill_group, remaining, timed_out

    with tempfile.TemporaryDirectory(prefix="runnable-dask-child-") as scratch:
        payload = os.path.join(scratch, "call.pickle")
        result = os.path.join(scratch, "result.pickle")
        with open(payload, "wb") as handle:
            cloudpickle.dump((function, kwargs), handle)
        env = {**os.environ, PATH_ENV: json.dumps(sys.path)}
        with open(os.path.join(scratch, "output"), "w+", encoding="utf-8", errors="replace") as out:
            process = subprocess.Popen(
                [sys.executable, __file__, payload, result],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            # A timer kills it at the deadline, while this thread blocks in wait():
            # Popen.wait(timeout) polls, adding up to 50 ms to every step.
            fired = threading.Event()
            killer = threading.Timer(remaining() or 0.0, _stop, (process, fired))
            killer.daemon = True
            killer.start()
            try:
                process.wait()
            except BaseException:
                kill_group(process)
                process.wait()
                raise
            finally:
                killer.cancel()
                kill_group(process)  # whatever the function started and left behind
                out.seek(0)
                sys.stdout.write(out.read())
            if fired.is_set() and not os.path.exists(result):
                raise timed_out(current_limit() or 0.0)
        if not os.path.exists(result):
            raise ChildProcessLostError(
                f"the step's process exited with status {process.returncode} before it "
                "returned (killed by the system, or it called os._exit)"
            )
        with open(result, "rb") as handle:
            ok, value, trace = cloudpickle.load(handle)
    if ok:
        return value
    raise value from RemoteTraceback(trace)


def _stop(process: subprocess.Popen[bytes], fired: threading.Event) -> None:
    from runnable_dask.runtime.deadline import kill_group

    fired.set()
    kill_group(process)


def _child_main(payload: str, result: str) -> None:
    sys.path[:] = json.loads(os.environ.pop(PATH_ENV, "[]")) or sys.path
    import traceback

    import cloudpickle

    try:
        with open(payload, "rb") as handle:
            function, kwargs = cloudpickle.load(handle)
        outcome: tuple[bool, Any, str] = (True, function(**kwargs), "")
    except BaseException as exc:
        below = exc.__traceback__.tb_next if exc.__traceback__ else None  # from the user's code
        outcome = (False, exc, "".join(traceback.format_exception(type(exc), exc, below)))
    try:
        data = cloudpickle.dumps(outcome)
    except Exception as exc:  # a value or exception that cannot be pickled
        error = TypeError(
            f"the step's {'value' if outcome[0] else 'exception'} cannot be sent "
            f"back from its process: {type(exc).__name__}: {exc}"
        )
        data = cloudpickle.dumps((False, error, outcome[2]))
    with open(result + ".part", "wb") as handle:
        handle.write(data)
    os.replace(result + ".part", result)
    sys.stdout.flush()
    sys.stderr.flush()


if __name__ == "__main__":
    _child_main(sys.argv[1], sys.argv[2])
