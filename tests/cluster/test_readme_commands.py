"""The documented ``dask scheduler`` / ``dask worker`` lines (docs/dask-clusters.md), run
as written (free ports instead of 8786/8787), listen on 127.0.0.1 only and run a pipeline
(issue 17, point 9)."""

from __future__ import annotations

import re
import shlex
import socket
import time
from pathlib import Path

import psutil
import pytest
from project_copy import REPOSITORY

from runnable_dask import Pipeline, ShellTask

from .conftest import DASK, START_TIMEOUT, start, stop, write_config

pytestmark = pytest.mark.cluster


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _readme_commands() -> list[list[str]]:
    """The first ``dask scheduler`` and ``dask worker`` lines of the page's bash blocks."""
    lines = (REPOSITORY / "docs" / "dask-clusters.md").read_text(encoding="utf-8").splitlines()
    found = [line.rstrip(" &") for line in lines if re.match(r"dask (scheduler|worker) ", line)]
    return [shlex.split(line) for line in found[:2]]


def _listening(process: psutil.Process) -> list[str]:
    addresses = []
    for member in [process, *process.children(recursive=True)]:
        addresses += [
            c.laddr.ip for c in member.net_connections(kind="inet") if c.status == "LISTEN"
        ]
    return addresses


@pytest.mark.timeout(180)
def test_the_readmes_cluster_commands_listen_on_127_0_0_1_only(workdir: Path) -> None:
    scheduler_line, worker_line = _readme_commands()
    assert scheduler_line[:2] == ["dask", "scheduler"] and worker_line[:2] == ["dask", "worker"]
    port, dashboard = _free_port(), _free_port()

    def with_ports(words: list[str]) -> list[str]:
        text = " ".join(words[1:]).replace("8786", str(port)).replace("8787", str(dashboard))
        return [DASK, *text.split()]

    processes = []
    try:
        processes.append(start(with_ports(scheduler_line), workdir, workdir / "scheduler.log"))
        processes.append(start(with_ports(worker_line), workdir, workdir / "workers.log"))
        from distributed import Client

        with Client(f"tcp://127.0.0.1:{port}", timeout=START_TIMEOUT) as client:
            client.wait_for_workers(2, timeout=START_TIMEOUT)
        deadline = time.monotonic() + START_TIMEOUT  # each worker's dashboard is up too
        while time.monotonic() < deadline:
            addresses = [a for p in processes for a in _listening(psutil.Process(p.pid))]
            if len(addresses) >= 2 + 2 * 3:  # scheduler 2; per worker: worker, dashboard, nanny
                break
            time.sleep(0.2)
        assert addresses and set(addresses) == {"127.0.0.1"}, addresses

        config = write_config(workdir, {"address": f"tcp://127.0.0.1:{port}", "timeout": 30})
        double = ShellTask(name="double", command="export y=$((x * 2))", returns=["y"])
        pipeline = Pipeline(steps=[double])
        (workdir / "params.yaml").write_text("x: 21\n")
        run_log = pipeline.execute(
            configuration_file=str(config), parameters_file=str(workdir / "params.yaml")
        )
        assert run_log.parameters["y"].value == 42
    finally:
        stop(processes)
