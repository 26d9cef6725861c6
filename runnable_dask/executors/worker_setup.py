"""Worker processes of the cluster a run starts for itself: without the run's secrets,
deaf to Ctrl-C, and with the run's notebook kernels starting as they start.

A ``LocalCluster``'s nannies spawn workers with the driving process's environment, so
without care every worker (and any client that can reach it) holds every secret the
driver has. Here the names of the secrets tasks name are taken out of the driver's
environment while the cluster starts (so the workers' initial environment lacks them),
and each worker removes them again from its own environment when it starts (a worker
the nanny restarts later is spawned from the full environment). A task gets the values
of the secrets it names from the run, only while it runs.

Ctrl-C in a terminal signals the whole process group, workers included; the run's
driver stops the run and closes the cluster, so workers ignore SIGINT instead of dying
with tracebacks of their own.

A kernel takes about a second to start, as long as a worker process; a run that starts
its own cluster knows its notebooks' kernels when it is planned, so each worker starts an
idle one of each as it starts, and its first notebook step finds it ready or nearly
(:mod:`runnable_dask.runtime.kernel_pool`). The worker registers with the scheduler only
once their processes exist (about 0.2 s: jupyter_client's import, then the launch), so
no step can reach it before its kernels are under way. Those kernels end with the worker
(``dask_teardown``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click
import dask

if TYPE_CHECKING:
    from runnable_dask.runtime.kernel_pool import KernelKey

PRELOAD = "runnable_dask.executors.worker_setup"


@click.command()
@click.option("--withhold", multiple=True, help="an environment variable to remove")
@click.option("--kernel", multiple=True, help="a kernel to ready: JSON [name, *arguments]")
def dask_setup(worker: Any, withhold: tuple[str, ...], kernel: tuple[str, ...]) -> None:
    """Run in each worker process as it starts (Dask's preload)."""
    for name in withhold:
        os.environ.pop(name, None)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if kernel:  # after the secrets are gone: the kernels start with this environment
        from runnable_dask.runtime.kernel_pool import KernelKey, kernel_pool

        keys = [KernelKey(name, tuple(arguments)) for name, *arguments in map(json.loads, kernel)]
        kernel_pool().prepare(keys, launched=True)


async def dask_teardown(worker: Any) -> None:
    """The worker closes: its idle kernels end with it (waited for off its event loop)."""
    from runnable_dask.runtime.kernel_pool import close_pool, current_pool

    if current_pool() is not None:
        await asyncio.to_thread(close_pool)


def closing_quietly() -> None:
    """The run stopped early and closes its cluster now: a worker that loses its peer
    mid-transfer while closing logs nothing (the run's summary says what happened)."""
    logging.getLogger("distributed").setLevel(logging.CRITICAL)


@contextmanager
def workers_without(names: Iterable[str], kernels: Iterable[KernelKey] = ()) -> Iterator[None]:
    """Start the run's cluster inside this: its workers hold none of ``names``, and each
    starts an idle kernel of each of ``kernels`` as it starts."""
    import distributed  # noqa: F401  (loads its defaults, which the set below must see)

    withheld = sorted(set(names))
    argv = [part for name in withheld for part in ("--withhold", name)]
    for key in sorted(set(kernels), key=repr):
        argv += ["--kernel", json.dumps([key.name, *key.arguments])]
    preloads = dask.config.get("distributed.worker.preload", None) or []
    preloads = [preloads] if isinstance(preloads, str) else list(preloads)
    theirs = dask.config.get("distributed.worker.preload-argv", None) or []
    if theirs and isinstance(theirs[0], str):  # one argv for each of the user's preloads
        theirs = [theirs] * len(preloads)
    argvs = [*(theirs or [[]] * len(preloads)), argv]
    saved = {name: os.environ.pop(name) for name in withheld if name in os.environ}
    try:
        with dask.config.set(
            {
                "distributed.worker.preload": [*preloads, PRELOAD],
                "distributed.worker.preload-argv": argvs,
            }
        ):
            yield
    finally:
        os.environ.update(saved)
