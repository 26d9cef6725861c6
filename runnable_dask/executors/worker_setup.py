"""Worker processes of the cluster a run starts for itself: without the run's secrets,
and deaf to Ctrl-C.

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
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import click
import dask

PRELOAD = "runnable_dask.executors.worker_setup"


@click.command()
@click.option("--withhold", multiple=True, help="an environment variable to remove")
def dask_setup(worker: Any, withhold: tuple[str, ...]) -> None:
    """Run in each worker process as it starts (Dask's preload)."""
    for name in withhold:
        os.environ.pop(name, None)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def closing_quietly() -> None:
    """The run stopped early and closes its cluster now: a worker that loses its peer
    mid-transfer while closing logs nothing (the run's summary says what happened)."""
    logging.getLogger("distributed").setLevel(logging.CRITICAL)


@contextmanager
def workers_without(names: Iterable[str]) -> Iterator[None]:
    """Start the run's cluster inside this: its workers hold none of ``names``."""
    import distributed  # noqa: F401  (loads its defaults, which the set below must see)

    withheld = sorted(set(names))
    argv = [part for name in withheld for part in ("--withhold", name)]
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
