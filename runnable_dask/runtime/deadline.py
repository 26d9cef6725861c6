"""A task's ``timeout``: the attempt's deadline, and the processes stopped when it passes.

:func:`time_limit` sets the deadline of the attempt running in this thread; the runners
read it (:func:`remaining`) and stop what they started when it passes:

- a ``PythonTask`` with a timeout runs in a child interpreter
  (:mod:`runnable_dask.runtime.child`), killed at the limit;
- a ``ShellTask`` runs in a process group of its own (:mod:`runnable_dask.runtime.processes`),
  killed at the limit with every process the command started;
- a ``NotebookTask``'s cells may run only for what is left of the limit; the cell that
  overruns stops the notebook and its kernel is killed, with its process group.

An attempt that ends, well or badly, after its deadline fails with
:class:`StepTimeoutError`, naming the limit: a timed-out step is never a success.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

_local = threading.local()


class StepTimeoutError(Exception):
    """The attempt ran longer than its task's ``timeout`` and was stopped."""


def timed_out(limit: float) -> StepTimeoutError:
    return StepTimeoutError(
        f"the attempt ran longer than its timeout of {limit:g} s and was stopped; raise "
        "the task's timeout if it needs longer"
    )


_NO_LIMIT = contextlib.nullcontext()
"""The context of an attempt without a limit (most): one shared, nothing made per step."""


def time_limit(seconds: float | None) -> contextlib.AbstractContextManager[None]:
    """Run the body as one attempt of at most ``seconds`` (no limit when None)."""
    return _NO_LIMIT if seconds is None else _limited(seconds)


@contextlib.contextmanager
def _limited(seconds: float) -> Iterator[None]:
    deadline = time.monotonic() + seconds
    previous = getattr(_local, "limit", None)
    _local.limit = (deadline, seconds)
    try:
        yield
    except StepTimeoutError:
        raise
    except Exception as exc:
        if time.monotonic() >= deadline:  # what stopping it raised (a dead kernel, ...)
            raise timed_out(seconds) from exc
        raise
    else:
        if time.monotonic() > deadline:
            raise timed_out(seconds)
    finally:
        _local.limit = previous


def remaining() -> float | None:
    """Seconds left to the running attempt (at least a millisecond), None without a limit."""
    limit = getattr(_local, "limit", None)
    return None if limit is None else max(limit[0] - time.monotonic(), 0.001)


def expired() -> bool:
    """Whether the running attempt has a limit, and it has passed."""
    limit = getattr(_local, "limit", None)
    return limit is not None and time.monotonic() >= limit[0]


def current_limit() -> float | None:
    """The running attempt's ``timeout`` in seconds, if it has one."""
    limit = getattr(_local, "limit", None)
    return None if limit is None else limit[1]


def kill_group(process: subprocess.Popen[Any]) -> None:
    """SIGKILL the process group ``process`` leads (it was started in a session of its own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def notebook_options() -> dict[str, Any]:
    """papermill options that bound every cell by what is left of the attempt's limit
    (nbclient's ``timeout_func``; a cell that overruns stops the notebook)."""
    if remaining() is None:
        return {}
    return {"timeout_func": lambda cell: remaining()}
