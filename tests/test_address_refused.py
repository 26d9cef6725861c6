"""An ``address`` where nothing listens fails at once (issue 17, point 9): Dask's client
retried a refused connection for the whole ``timeout``."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from runnable_dask import Pipeline, Stub
from runnable_dask.executors.cluster import ClusterError
from runnable_dask.stores.runlog_store import RunLogStore


@pytest.mark.timeout(60)  # a hang guard: the configured timeout is five times longer
def test_a_refused_port_fails_at_once_naming_the_address(workdir: Path) -> None:
    with socket.socket() as probe:  # a port just free on 127.0.0.1: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = workdir / "config.yaml"
    config.write_text(
        "pipeline-executor:\n  type: dask\n  config:\n"
        f"    address: tcp://127.0.0.1:{port}\n    timeout: 300\n"
    )
    with pytest.raises(ClusterError) as caught:
        Pipeline(steps=[Stub(name="never")]).execute(
            configuration_file=str(config), run_id="refused"
        )
    assert str(caught.value) == (
        f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}: the connection was "
        f"refused (Connection refused): nothing listens on port {port}; start it there "
        "(dask scheduler --host 127.0.0.1 --port PORT), or fix pipeline-executor.config.address"
    )
    run_log = RunLogStore(workdir / ".run_log_store").read("refused")
    assert run_log.status == "FAIL"
    assert run_log.run_config["error"].startswith("ClusterError: cannot reach the Dask scheduler")
