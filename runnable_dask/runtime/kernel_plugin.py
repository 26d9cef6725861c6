"""A Dask worker plugin that keeps a warm kernel on each worker and ends kernels with it.

Registered by the driver for each kernel a run's notebooks use (once per cluster: a
standing cluster keeps its kernels ready across runs). Idle kernels end with the worker
(``teardown``; an exit handler as well); a notebook step whose task is cancelled while
it runs (its run was interrupted) has its kernel ended with the processes it started.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from distributed import WorkerPlugin

from runnable_dask.runtime.kernel_pool import KernelKey, close_pool, current_pool, kernel_pool

_RUNNING = ("executing", "long-running")
_DROPPED = ("released", "cancelled", "forgotten")


class WarmKernels(WorkerPlugin):
    """Keeps one idle kernel of ``key`` ready on each worker."""

    idempotent = True  # registered again by every run: the first stays, kernels with it

    def __init__(self, key: KernelKey) -> None:
        self.key = key

    @property
    def name(self) -> str:
        digest = hashlib.sha1(repr(self.key.arguments).encode()).hexdigest()[:8]
        arguments = f"-{digest}" if self.key.arguments else ""
        return f"runnable-dask-kernels-{self.key.name}{arguments}"

    def setup(self, worker: Any) -> None:
        kernel_pool().prepare([self.key])

    async def teardown(self, worker: Any) -> None:
        await asyncio.to_thread(close_pool)  # waits for kernels to exit: not on the loop

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if start in _RUNNING and finish in _DROPPED:
            pool = current_pool()
            if pool is not None:
                pool.stop(str(key))
