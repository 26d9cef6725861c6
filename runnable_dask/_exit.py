"""A quicker exit for a process that ran a pipeline: Python's last collection skipped.

As it exits, Python walks every object still alive looking for garbage cycles. After a
run that means the objects of Dask, distributed, pydantic and numpy: 0.5-1 s of CPU on a
2-core machine, a third of the seed's ``parallel.py`` on a running cluster (py-spy: in
``gc_collect_main`` after the last ``atexit`` handler). The walk frees nothing the
operating system would not take back with the process, and Python does not promise to
finalize objects still alive at exit; so the last ``atexit`` handler freezes the heap
(``gc.freeze``), which that collection skips. Handlers registered later (Dask's, the
user's) run before it, as usual.
"""

from __future__ import annotations

import atexit
import gc


def install() -> None:
    """Register the freeze; done when runnable_dask is imported, so that it runs last."""
    atexit.register(gc.freeze)
