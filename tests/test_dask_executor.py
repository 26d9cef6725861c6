"""The ``dask`` executor on real multi-process clusters.

One module-scoped ``LocalCluster`` with worker processes serves the tests that connect by
``address``; one test runs a script as a user does, on the embedded cluster.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dask
import pytest
import yaml
from distributed import Client, LocalCluster

from runnable_dask import (
    ExecutionFailedError,
    Map,
    Parallel,
    Pipeline,
    PythonTask,
    ShellTask,
    Stub,
)
from runnable_dask.stores.runlog_store import RunLogStore

pytestmark = pytest.mark.cluster


def worker_pid() -> int:
    return os.getpid()


def nap_and_tell() -> tuple[int, float, float]:
    began = time.time()
    time.sleep(0.5)
    return os.getpid(), began, time.time()


def explode() -> None:
    raise RuntimeError("the worker says no")


def kill_own_worker() -> None:
    os._exit(1)


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(
        n_workers=2,
        threads_per_worker=2,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as local_cluster:
        yield local_cluster


@pytest.fixture
def on_cluster(cluster, tmp_path, monkeypatch) -> str:
    """A working folder and a configuration that points at the shared cluster."""
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "dask.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "pipeline-executor": {
                    "type": "dask",
                    "config": {"address": cluster.scheduler_address},
                }
            }
        )
    )
    return str(config)


def test_steps_run_in_worker_processes_and_group_by_name(cluster, on_cluster):
    def branch() -> Pipeline:
        return Pipeline(
            steps=[
                Stub(name="hello_stub"),
                PythonTask(name="train_model", function=worker_pid, returns=["pid"]),
                ShellTask(name="hello_shell", command="echo 'Hello World!'"),
            ]
        )

    pipeline = Pipeline(
        steps=[
            Parallel(name="parallel_step", branches={"branch1": branch(), "branch2": branch()}),
            Stub(name="continue_processing"),
        ]
    )
    run_log = pipeline.execute(configuration_file=on_cluster, run_id="on-cluster")

    assert run_log.status == "SUCCESS"
    parallel = run_log.steps["parallel_step"]
    for key in ("branch1", "branch2"):
        branch_log = parallel.branches[f"parallel_step.{key}"]
        assert branch_log.status == "SUCCESS"
        names = [s.name for s in branch_log.steps.values()]
        assert names == ["hello_stub", "train_model", "hello_shell", "success"]
        pid = branch_log.steps[f"parallel_step.{key}.train_model"].attempts[0]
        assert pid.output_parameters["pid"].value != os.getpid()
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        prefixes = client.run_on_scheduler(
            lambda dask_scheduler: list(dask_scheduler.task_prefixes)
        )
    for step in ("train_model", "hello_shell", "hello_stub", "parallel_step"):
        assert step in prefixes


def test_branches_run_at_once_on_both_workers(on_cluster):
    branches = {
        f"b{i}": Pipeline(
            steps=[PythonTask(name="nap", function=nap_and_tell, returns=["pid", "began", "ended"])]
        )
        for i in range(4)
    }
    run_log = Pipeline(steps=[Parallel(name="fan", branches=branches)]).execute(
        configuration_file=on_cluster, run_id="fan-out"
    )

    outputs = [run_log.step(f"fan.b{i}.nap").attempts[0].output_parameters for i in range(4)]
    pids = {o["pid"].value for o in outputs}
    latest_start = max(o["began"].value for o in outputs)
    earliest_end = min(o["ended"].value for o in outputs)
    assert len(pids) == 2, "both worker processes took branches"
    assert latest_start < earliest_end, "every branch was running at one moment"


def test_failure_on_a_worker_is_recorded_with_its_traceback(on_cluster, tmp_path):
    pipeline = Pipeline(steps=[PythonTask(name="explode", function=explode), Stub(name="after")])
    with pytest.raises(ExecutionFailedError, match="RuntimeError: the worker says no"):
        pipeline.execute(configuration_file=on_cluster, run_id="worker-fails")

    run_log = RunLogStore(tmp_path / ".run_log_store").read("worker-fails")
    assert run_log.status == "FAIL"
    assert run_log.steps["explode"].attempts[0].message == "RuntimeError: the worker says no"
    assert "after" not in run_log.steps
    log = tmp_path / ".catalog" / "worker-fails" / "logs" / "explode.execution.log"
    assert 'raise RuntimeError("the worker says no")' in log.read_text()


def test_a_step_that_kills_its_worker_fails_the_run_with_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as fragile,
    ):
        config = tmp_path / "fragile.yaml"
        address = {"address": fragile.scheduler_address}
        config.write_text(
            yaml.safe_dump({"pipeline-executor": {"type": "dask", "config": address}})
        )
        pipeline = Pipeline(
            steps=[Stub(name="before"), PythonTask(name="suicide", function=kill_own_worker)]
        )
        with pytest.raises(
            ExecutionFailedError, match="suicide: stopped while running: KilledWorker"
        ):
            pipeline.execute(configuration_file=str(config), run_id="killed")

    run_log = RunLogStore(tmp_path / ".run_log_store").read("killed")
    assert run_log.status == "FAIL"
    assert run_log.steps["before"].status == "SUCCESS"
    assert run_log.steps["suicide"].status == "FAIL"
    assert "KilledWorker" in run_log.steps["suicide"].message


USER_MODULE = """
def shout(word: str) -> str:
    return word.upper()
"""

USER_SCRIPT = '''
"""A user's pipeline script: a function from the user's own package and one from __main__."""
from runnable_dask import Parallel, Pipeline, PythonTask


def exclaim(loud: str) -> str:
    return loud + "!"


def main():
    from mylib.words import shout

    branch = lambda: Pipeline(
        steps=[
            PythonTask(name="shout", function=shout, returns=["loud"]),
            PythonTask(name="exclaim", function=exclaim, returns=["final"]),
        ]
    )
    pipeline = Pipeline(steps=[Parallel(name="words", branches={"a": branch(), "b": branch()})])
    pipeline.execute(parameters_file="params.yaml")
    return pipeline


if __name__ == "__main__":
    main()
'''


def test_user_script_on_the_embedded_cluster(tmp_path):
    (tmp_path / "mylib").mkdir()
    (tmp_path / "mylib" / "__init__.py").write_text("")
    (tmp_path / "mylib" / "words.py").write_text(USER_MODULE)
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "run.py").write_text(textwrap.dedent(USER_SCRIPT))
    (tmp_path / "params.yaml").write_text("word: hello\n")
    env = {**os.environ, "RUNNABLE_RUN_ID": "user-script"}
    env.pop("RUNNABLE_CONFIGURATION_FILE", None)

    done = subprocess.run(
        [sys.executable, "pipelines/run.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Dashboard: http://127.0.0.1:" in done.stdout
    run_log = RunLogStore(Path(tmp_path) / ".run_log_store").read("user-script")
    assert run_log.status == "SUCCESS"
    assert run_log.run_config["pipeline-executor"]["type"] == "dask"
    assert run_log.parameters["final"].value == "HELLO!"
    assert run_log.step("words.b.exclaim").status == "SUCCESS"
    assert "Traceback" not in done.stderr


def read_secret() -> str:
    value = os.environ["RD_TEST_TOKEN"]
    print("using the token")
    return str(len(value))


def square(x: int) -> int:
    return x * x


def test_the_run_and_its_branches_are_dask_spans(cluster, on_cluster):
    """Fine Performance Metrics group a run's tasks by branch; a map's items share one."""
    fan = Parallel(
        name="fan",
        branches={
            "a": Pipeline(steps=[PythonTask(name="pid_a", function=worker_pid, returns=["a"])]),
            "b": Pipeline(
                steps=[
                    Map(
                        name="sweep",
                        branch=Pipeline(
                            steps=[PythonTask(name="square", function=square, returns=["sq"])]
                        ),
                        iterate_on="xs",
                        iterate_as="x",
                    )
                ]
            ),
        },
    )
    Path("parameters.yaml").write_text("xs: [1, 2, 3]\n")
    run_log = Pipeline(steps=[fan]).execute(
        configuration_file=on_cluster, run_id="spans", parameters_file="parameters.yaml"
    )
    assert run_log.status == "SUCCESS"
    assert run_log.parameters["sq"].value == [1, 4, 9]
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        spans = client.run_on_scheduler(
            lambda dask_scheduler: {
                tuple(s.name): sorted({g.name.rsplit("-", 1)[0] for g in s.groups})
                for s in dask_scheduler.extensions["spans"].spans.values()
            }
        )
    run = "runnable-dask spans"
    assert "pid_a" in spans[(run, "fan.a")]
    assert "square" in spans[(run, "fan.b", "fan.b.sweep")]
    assert "fan" in spans[(run,)]


def test_secrets_reach_the_task_and_nothing_it_did_not_print(cluster, on_cluster, capsys):
    os.environ["RD_TEST_TOKEN"] = "s3cr3t-value"
    try:
        task = PythonTask(
            name="use_token", function=read_secret, returns=["length"], secrets=["RD_TEST_TOKEN"]
        )
        run_log = Pipeline(steps=[task]).execute(configuration_file=on_cluster, run_id="secret")
    finally:
        del os.environ["RD_TEST_TOKEN"]
    assert run_log.status == "SUCCESS"
    assert run_log.parameters["length"].value == str(len("s3cr3t-value"))
    written = [
        p.read_bytes()
        for folder in (Path(".run_log_store"), Path(".catalog"))
        for p in folder.rglob("*")
        if p.is_file()
    ]
    assert written, "the run wrote its log and catalog"
    assert not any(b"s3cr3t-value" in content for content in written)
    assert "s3cr3t-value" not in capsys.readouterr().out


def test_a_run_asked_for_a_performance_report_keeps_one_naming_its_steps(on_cluster):
    config = yaml.safe_load(Path(on_cluster).read_text())
    config["pipeline-executor"]["config"]["performance_report"] = True
    Path(on_cluster).write_text(yaml.safe_dump(config))
    task = PythonTask(name="report_me", function=worker_pid, returns=["pid"])
    run_log = Pipeline(steps=[task]).execute(configuration_file=on_cluster, run_id="report")
    report = Path(run_log.run_config["performance_report"])
    assert report == Path.cwd() / ".catalog" / "report" / "dask-performance-report.html"
    html = report.read_text()
    assert "report_me" in html
    # BokehJS is inside the file: no <script src=...> from a CDN, so it opens offline.
    assert re.search(r"<script[^>]*\bsrc=", html) is None


def test_a_short_run_keeps_no_performance_report_unless_asked(on_cluster, capsys):
    # Rendering the report costs as much as a short run (see AUTO_REPORT_SECONDS).
    task = PythonTask(name="quick", function=worker_pid, returns=["pid"])
    run_log = Pipeline(steps=[task]).execute(configuration_file=on_cluster, run_id="quick")
    assert "performance_report" not in run_log.run_config
    assert not (Path.cwd() / ".catalog" / "quick" / "dask-performance-report.html").exists()
    assert "Report:" not in capsys.readouterr().out
