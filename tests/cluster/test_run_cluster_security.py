"""The cluster a run starts for itself accepts only that run (issue 17, point 8).

A real driver (``python pipeline.py``, the default ``dask`` executor) runs with
``MY_TOKEN`` in its environment. While its first step holds the run open, another
process tries to connect a ``distributed.Client`` to the run's scheduler, as a
different local user's code would; then steps report what they see of ``MY_TOKEN``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.cluster

PIPELINE = '''
import os
import sys
import time
from pathlib import Path

from runnable_dask import Pipeline, PythonTask, ShellTask

FOLDER = Path(sys.argv[1])


def hold_open():
    from distributed import get_worker

    (FOLDER / "address").write_text(get_worker().scheduler.address)
    deadline = time.monotonic() + 120
    while not (FOLDER / "checked").exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def in_worker_environment():
    """What a task that does not name the secret finds, in its worker process."""
    with open("/proc/self/environ", "rb") as handle:
        started_with = b"MY_TOKEN=" in handle.read()
    return os.environ.get("MY_TOKEN"), started_with


def named():
    return os.environ.get("MY_TOKEN")


def main():
    Pipeline(steps=[
        PythonTask(name="hold_open", function=hold_open),
        PythonTask(name="unnamed", function=in_worker_environment,
                   returns=["unnamed_sees", "worker_started_with_it"]),
        PythonTask(name="named", function=named, secrets=["MY_TOKEN"], returns=["named_sees"]),
        ShellTask(name="shell", command='export shell_sees="${MY_TOKEN:-unset}"',
                  returns=["shell_sees"]),
    ]).execute(configuration_file=str(FOLDER / "config.yaml"))


if __name__ == "__main__":
    main()
'''

INTRUDER = """
import json, sys
from distributed import Client
from distributed.security import Security

address = sys.argv[1]
outcomes = {}
attempts = {
    "tcp": (address.replace("tls://", "tcp://"), None),
    "tls without a certificate": (address, None),
    "tls with a certificate of its own": (address, Security.temporary()),
}
for name, (target, security) in attempts.items():
    try:
        with Client(target, security=security, timeout=5, set_as_default=False) as client:
            found = client.run(lambda: __import__("os").environ.get("MY_TOKEN"))
        outcomes[name] = f"connected: {found}"
    except Exception as exc:
        outcomes[name] = f"refused: {type(exc).__name__}"
print(json.dumps(outcomes))
"""


@pytest.mark.timeout(300)
def test_only_the_run_reaches_its_cluster_and_only_named_tasks_see_a_secret(
    tmp_path: Path,
) -> None:
    (tmp_path / "pipeline.py").write_text(PIPELINE, encoding="utf-8")
    executor = {"dashboard_address": "127.0.0.1:0", "performance_report": False}
    (tmp_path / "config.yaml").write_text(
        json.dumps({"pipeline-executor": {"type": "dask", "config": executor}}), encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
    env.pop("PYTHONPATH", None)
    env["MY_TOKEN"] = "s3cr3t"
    driver = subprocess.Popen(
        [sys.executable, "pipeline.py", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        address_file = tmp_path / "address"
        deadline = time.monotonic() + 120
        while not address_file.exists():
            assert driver.poll() is None, driver.communicate()[0]
            assert time.monotonic() < deadline, "the run never started its first step"
            time.sleep(0.2)
        address = address_file.read_text()
        assert address.startswith("tls://127.0.0.1:")
        intruder = subprocess.run(
            [sys.executable, "-c", INTRUDER, address],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        outcomes = json.loads(intruder.stdout.strip().splitlines()[-1])
        (tmp_path / "checked").write_text("done")
        output, _ = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, 9)
            driver.wait()
    assert len(outcomes) == 3
    assert all(outcome.startswith("refused") for outcome in outcomes.values()), outcomes
    assert driver.returncode == 0, output
    assert "TLS" in output  # the run says how its cluster is secured
    (log_file,) = (tmp_path / ".run_log_store").glob("*.json")
    parameters = json.loads(log_file.read_text())["parameters"]
    seen = {name: record["value"] for name, record in parameters.items()}
    assert seen == {
        "unnamed_sees": None,
        "worker_started_with_it": False,
        "named_sees": "s3cr3t",
        "shell_sees": "unset",
    }


@pytest.mark.timeout(120)
def test_a_cluster_of_worker_threads_serves_only_127_0_0_1_and_only_the_run() -> None:
    # processes: false puts the workers in the driver; Dask's in-memory transport for
    # them served each worker's HTTP on every interface and linked the dashboard at the
    # machine's address (and "inproc://127.0.0.1" did not start at all).
    import psutil
    from distributed import Client

    from runnable_dask.config import DaskConfig
    from runnable_dask.executors.cluster import new_local_cluster

    def listening() -> set[tuple[str, int]]:
        connections = psutil.Process().net_connections()
        return {tuple(c.laddr) for c in connections if c.status == psutil.CONN_LISTEN}

    before = listening()
    config = DaskConfig(processes=False, n_workers=1, dashboard_address="127.0.0.1:0")
    cluster, security = new_local_cluster(config, None)
    try:
        opened = listening() - before
        with Client(cluster, security=security, set_as_default=False) as client:
            link = client.dashboard_link
            assert client.submit(sum, [1, 2]).result() == 3
    finally:
        cluster.close()
    assert opened, "the cluster listens nowhere"
    assert {host for host, _ in opened} == {"127.0.0.1"}, opened
    assert cluster.scheduler_address.startswith("tls://127.0.0.1:")
    assert link.startswith("http://127.0.0.1:")
