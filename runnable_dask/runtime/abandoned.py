"""Whether the Dask task running in this thread has been given up: cancelled by the
scheduler (its driver went away, or released what the task computes) or its worker is
closing.

Dask cannot stop a task's thread; a task that waits on a child process checks this
instead and ends the child itself. This reads Dask internals (the worker's state
machine and the executing thread's key); the killed-driver test of
``tests/cluster/test_interrupts.py`` fails if they change.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

_GONE = ("cancelled", "released", "forgotten")


def abandoned_check() -> Callable[[], bool] | None:
    """A check for the task running in this thread, or None outside a Dask worker."""
    if "distributed" not in sys.modules:  # in-process runs never import it
        return None
    from distributed import get_worker
    from distributed.core import Status
    from distributed.worker import thread_state

    try:
        worker = get_worker()
    except ValueError:
        return None
    key = getattr(thread_state, "key", None)
    live = (Status.running, Status.paused)

    def check() -> bool:
        if worker.status not in live:
            return True
        task = worker.state.tasks.get(key) if key is not None else None
        return key is not None and (task is None or task.state in _GONE)

    return check
