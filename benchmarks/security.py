"""What the secure default costs: the cluster a run starts for itself speaks TLS with
temporary credentials (``Security.temporary()``).

Measured side by side, best of ``repeat`` taken in turn: starting a LocalCluster of 2
worker processes x 4 threads with TLS against without; bare Dask's ``wide`` graph on
each; and runnable_dask's ``wide`` on the TLS cluster against bare Dask on it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from distributed import Client, LocalCluster
from distributed.security import Security

from benchmarks import runs
from benchmarks.report import Row, ratio, seconds
from benchmarks.timing import best_of
from benchmarks.workloads import Workload

WORKERS, THREADS = 2, 4


@contextmanager
def cluster(security: Security | None) -> Iterator[Client]:
    """A LocalCluster on 127.0.0.1, with TLS when ``security`` is given."""
    tls: dict[str, Any] = {"security": security, "protocol": "tls://"} if security else {}
    with (
        LocalCluster(
            n_workers=WORKERS,
            threads_per_worker=THREADS,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=logging.ERROR,
            **tls,
        ) as started,
        Client(started, security=security, set_as_default=False) as client,
    ):
        client.wait_for_workers(WORKERS)
        yield client


def _start_and_stop(secure: bool) -> None:
    with cluster(Security.temporary() if secure else None):
        pass


def measure(n: int, repeat: int, scratch: Path) -> list[Row]:
    """The rows: cluster start, bare Dask with and without TLS, ours on TLS."""
    label = f"LocalCluster {WORKERS} proc x {THREADS} thr"
    start = best_of(
        repeat, {"tls": lambda: _start_and_stop(True), "plain": lambda: _start_and_stop(False)}
    )
    workload = Workload("wide", n)
    security = Security.temporary()
    with cluster(security) as secure, cluster(None) as plain:
        config = _tls_config(scratch, secure.scheduler.address, security)
        pipeline = runs.ours(workload)
        runs.warm_up(config, lambda w: runs.run_bare_client(w, secure))
        runs.run_bare_client(workload, plain)
        best = best_of(
            repeat,
            {
                "ours tls": lambda: runs.run_ours(pipeline, config),
                "bare tls": lambda: runs.run_bare_client(workload, secure),
                "bare plain": lambda: runs.run_bare_client(workload, plain),
            },
        )
    return [
        Row(
            "secure default: cluster start and close",
            f"{label}: TLS | plain",
            seconds(start["tls"]),
            seconds(start["plain"]),
            ratio(start["tls"], start["plain"]),
            target="-",
        ),
        Row(
            f"secure default: {workload.label}, bare Dask",
            f"{label}: TLS | plain",
            seconds(best["bare tls"]),
            seconds(best["bare plain"]),
            ratio(best["bare tls"], best["bare plain"]),
            target="-",
        ),
        Row(
            workload.label,
            f"dask ({label}, TLS)",
            seconds(best["ours tls"]),
            seconds(best["bare tls"]),
            ratio(best["ours tls"], best["bare tls"]),
            target="-",
        ),
    ]


def _tls_config(folder: Path, address: str, security: Security) -> Path:
    """runnable_dask given the TLS cluster by address, with its temporary credentials
    written to files (the configuration names certificate files)."""
    paths = {}
    for name in ("tls_ca_file", "tls_client_cert", "tls_client_key"):
        path = folder / f"{name}.pem"
        path.write_text(getattr(security, name), encoding="utf-8")
        paths[name] = str(path)
    return runs.write_config(
        folder, "tls", "dask", address=address, performance_report=False, security=paths
    )
