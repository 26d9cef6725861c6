"""Run every example as a user would, and check what the user would look at.

Each example runs as ``python examples/<folder>/<file>.py`` from a copy of the repository
root (``project_copy.py``: nothing is written into the checkout), in a subprocess, with
``RUNNABLE_RUN_ID`` set so the test finds its run log in ``.run_log_store/<run_id>.json``
and its catalog in ``.catalog/<run_id>/``. Both are removed afterwards (and ``data/`` or
``report/``, if the example created it).

Most examples run with examples/configs/local.yaml (threads in one process) to keep the
suite quick; those marked ``cluster`` run on the default configuration or
examples/configs/dask.yaml, each starting a real multi-process Dask LocalCluster.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from project_copy import project_root

ROOT = project_root()  # a copy: runs write nothing into the checkout
LOCAL = "examples/configs/local.yaml"
DASK = "examples/configs/dask.yaml"
DEFAULT = ""  # no configuration file: the default LocalCluster
EXAMPLE_TIMEOUT = 240

HELLO_WORKFLOW = ["hello_stub", "hello_python", "hello_shell", "hello_notebook", "success"]


@dataclass
class ExampleRun:
    """One finished run of an example: the process and what it left behind."""

    example: str
    run_id: str
    process: subprocess.CompletedProcess[str]

    @property
    def run_log(self) -> dict[str, Any]:
        path = ROOT / ".run_log_store" / f"{self.run_id}.json"
        assert path.exists(), f"{self.example} wrote no run log at {path}\n{self.output}"
        return json.loads(path.read_text(encoding="utf-8"))

    @property
    def catalog(self) -> Path:
        return ROOT / ".catalog" / self.run_id

    @property
    def output(self) -> str:
        return f"--- stdout ---\n{self.process.stdout}\n--- stderr ---\n{self.process.stderr}"

    def succeeded(self) -> dict[str, Any]:
        """Assert a zero exit and a SUCCESS run log; return the run log."""
        assert self.process.returncode == 0, f"{self.example} failed\n{self.output}"
        run_log = self.run_log
        assert run_log["status"] == "SUCCESS", run_log
        return run_log

    def failed(self) -> dict[str, Any]:
        """Assert a non-zero exit and a FAIL run log; return the run log."""
        assert self.process.returncode != 0, f"{self.example} should fail\n{self.output}"
        assert "ExecutionFailedError" in self.process.stderr, self.output
        run_log = self.run_log
        assert run_log["status"] == "FAIL", run_log
        return run_log


Runner = Callable[..., ExampleRun]


@pytest.fixture
def run_example(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runner]:
    """Run an example from the repository root; clean up its run log and catalog.

    Each run's configuration is ``config`` with the step cache in the test's own folder
    (shared by the test's runs), so no run reads or leaves entries in the repository.
    """
    run_ids: list[str] = []
    had_data = (ROOT / "data").exists()
    had_report = (ROOT / "report").exists()

    def _run(example: str, config: str = LOCAL, env: dict[str, str] | None = None) -> ExampleRun:
        run_id = f"test-{request.node.name}-{uuid.uuid4().hex[:8]}"
        for char in "[]/ ":
            run_id = run_id.replace(char, "-")
        run_ids.append(run_id)
        environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
        environ["RUNNABLE_RUN_ID"] = run_id
        settings = yaml.safe_load((ROOT / config).read_text(encoding="utf-8")) if config else {}
        settings.setdefault("cache", {"location": str(tmp_path / "cache")})
        configuration = tmp_path / f"{run_id}.yaml"
        configuration.write_text(yaml.safe_dump(settings), encoding="utf-8")
        environ["RUNNABLE_CONFIGURATION_FILE"] = str(configuration)
        environ.update(env or {})
        process = subprocess.run(
            [sys.executable, example],
            cwd=ROOT,
            env=environ,
            capture_output=True,
            text=True,
            timeout=EXAMPLE_TIMEOUT,
            check=False,
        )
        return ExampleRun(example=example, run_id=run_id, process=process)

    yield _run

    for run_id in run_ids:
        (ROOT / ".run_log_store" / f"{run_id}.json").unlink(missing_ok=True)
        shutil.rmtree(ROOT / ".catalog" / run_id, ignore_errors=True)
    if not had_data:
        shutil.rmtree(ROOT / "data", ignore_errors=True)
    if not had_report:  # written by examples/ml_sweep
        shutil.rmtree(ROOT / "report", ignore_errors=True)


def statuses(steps: dict[str, Any]) -> dict[str, str]:
    """Internal name -> status of every step at this level."""
    return {name: step["status"] for name, step in steps.items()}


def all_steps(steps: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every step at every depth, with its internal name."""
    for name, step in steps.items():
        yield name, step
        for branch in step["branches"].values():
            yield from all_steps(branch["steps"])


def parameter(run_log: dict[str, Any], name: str) -> Any:
    return run_log["parameters"][name]["value"]


def notebook_output(path: Path) -> str:
    """All text a notebook's cells printed."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return "".join(
        "".join(output.get("text", ""))
        for cell in notebook["cells"]
        for output in cell.get("outputs", [])
    )


def step_log(run: ExampleRun, internal_name: str) -> str:
    path = run.catalog / "logs" / f"{internal_name}.execution.log"
    assert path.exists(), f"no log for {internal_name} in {run.catalog}"
    return path.read_text(encoding="utf-8")


# 01-tasks ---------------------------------------------------------------------------


def test_python_tasks(run_example: Runner) -> None:
    run = run_example("examples/01-tasks/python_tasks.py")
    run_log = run.succeeded()
    assert statuses(run_log["steps"]) == {"hello": "SUCCESS", "success": "SUCCESS"}
    assert run_log["steps"]["hello"]["step_type"] == "task"
    assert "Hello World!" in step_log(run, "hello")


def test_scripts(run_example: Runner) -> None:
    run = run_example("examples/01-tasks/scripts.py")
    run_log = run.succeeded()
    assert statuses(run_log["steps"]) == {"shell": "SUCCESS", "success": "SUCCESS"}
    log = step_log(run, "shell")
    assert "Hello World!" in log
    assert str(ROOT) in log  # pwd: shell steps run in the folder the pipeline started from


def test_notebook(run_example: Runner) -> None:
    run = run_example("examples/01-tasks/notebook.py")
    run_log = run.succeeded()
    assert statuses(run_log["steps"]) == {"notebook": "SUCCESS", "success": "SUCCESS"}
    executed = run.catalog / "simple_notebook-notebook_out.ipynb"
    assert executed.exists(), sorted(p.name for p in run.catalog.iterdir())
    assert "Hello World!" in notebook_output(executed)


def test_stub(run_example: Runner) -> None:
    run = run_example("examples/01-tasks/stub.py")
    run_log = run.succeeded()
    assert statuses(run_log["steps"]) == {
        "step 1": "SUCCESS",
        "step 2": "SUCCESS",
        "step 3": "SUCCESS",
        "success": "SUCCESS",
    }
    assert {step["step_type"] for step in run_log["steps"].values()} == {"stub", "success"}


# 02-sequential ----------------------------------------------------------------------


@pytest.mark.cluster
def test_traversal_on_the_default_cluster(run_example: Runner) -> None:
    run = run_example("examples/02-sequential/traversal.py", config=DEFAULT)
    run_log = run.succeeded()
    assert run_log["run_config"]["pipeline-executor"]["type"] == "dask"
    expected = ["hello stub", "hello python", "hello shell", "hello notebook", "goodbye stub"]
    assert statuses(run_log["steps"]) == dict.fromkeys([*expected, "success"], "SUCCESS")
    # Steps ran one after another, in list order.
    starts = [run_log["steps"][name]["attempts"][0]["start_time"] for name in expected]
    ends = [run_log["steps"][name]["attempts"][0]["end_time"] for name in expected]
    assert all(end <= start for end, start in zip(ends, starts[1:], strict=False))
    assert "Hello World!" in step_log(run, "hello python")
    assert "Hello World!" in step_log(run, "hello shell")
    assert (run.catalog / "simple_notebook-hello notebook_out.ipynb").exists()


def test_default_fail(run_example: Runner) -> None:
    run = run_example("examples/02-sequential/default_fail.py")
    run_log = run.failed()
    assert statuses(run_log["steps"]) == {
        "step 1": "SUCCESS",
        "step 2": "FAIL",
        "fail": "SUCCESS",
    }
    assert "This step is meant to fail" in run_log["steps"]["step 2"]["message"]
    assert "step 3" not in run_log["steps"]


def test_on_failure_fail(run_example: Runner) -> None:
    run = run_example("examples/02-sequential/on_failure_fail.py")
    run_log = run.failed()
    assert statuses(run_log["steps"]) == {
        "step 1": "FAIL",
        "step 4": "SUCCESS",
        "step 5": "SUCCESS",
        "fail": "SUCCESS",
    }
    assert "cleaning up" in step_log(run, "step 4")


def test_on_failure_succeed(run_example: Runner) -> None:
    run = run_example("examples/02-sequential/on_failure_succeed.py")
    run_log = run.succeeded()
    assert statuses(run_log["steps"]) == {
        "step 1": "FAIL",
        "step 4": "SUCCESS",
        "step 5": "SUCCESS",
        "success": "SUCCESS",
    }
    assert "using the fallback" in step_log(run, "step 4")


# 03-parameters ----------------------------------------------------------------------

INITIAL_PARAMETERS = {
    "integer": 1,
    "floater": 3.14,
    "stringer": "hello",
    "chunks": [1, 2, 3],
    "pydantic_param": {"x": 10, "foo": "bar", "eggs": {"ham": "Yes, please!!"}},
}


@pytest.mark.parametrize("override", [None, "overridden"], ids=["file", "env-override"])
def test_static_parameters_python(run_example: Runner, override: str | None) -> None:
    env = {"RUNNABLE_PRM_stringer": override} if override else {}
    run = run_example("examples/03-parameters/static_parameters_python.py", env=env)
    run_log = run.succeeded()
    assert statuses(run_log["steps"]) == {"read params": "SUCCESS", "success": "SUCCESS"}
    expected = {**INITIAL_PARAMETERS, "stringer": override or "hello"}
    assert {name: parameter(run_log, name) for name in run_log["parameters"]} == expected
    inputs = run_log["steps"]["read params"]["attempts"][0]["input_parameters"]
    assert inputs["stringer"]["value"] == expected["stringer"]


def test_static_parameters_non_python(run_example: Runner) -> None:
    run = run_example(
        "examples/03-parameters/static_parameters_non_python.py",
        env={"RUNNABLE_PRM_stringer": "overridden"},
    )
    run_log = run.succeeded()
    assert statuses(run_log["steps"]) == {
        "read params in shell": "SUCCESS",
        "read params in notebook": "SUCCESS",
        "success": "SUCCESS",
    }
    assert parameter(run_log, "stringer") == "overridden"
    assert parameter(run_log, "chunks") == [1, 2, 3]
    log = step_log(run, "read params in shell")
    assert "integer=1 floater=3.14 stringer=overridden" in log
    assert "chunks=[1, 2, 3]" in log
    executed = run.catalog / "read_parameters_nb-read params in notebook_out.ipynb"
    assert "stringer='overridden'" in notebook_output(executed)


WRITTEN_PARAMETERS = {
    "integer": ("json", 1),
    "floater": ("json", 3.14),
    "stringer": ("json", "hello"),
    "pydantic_param": ("json", {"x": 10, "foo": "bar", "eggs": {"ham": "Yes, please!!"}}),
    "obj": ("object", "obj"),  # pickled values are named in the run log, not embedded
    "score": ("metric", 0.95),
}


def check_written_parameters(run_log: dict[str, Any]) -> None:
    for name, (kind, value) in WRITTEN_PARAMETERS.items():
        record = run_log["parameters"][name]
        assert (record["kind"], record["value"]) == (kind, value), (name, record)
    attempt = run_log["steps"]["write parameters"]["attempts"][0]
    assert attempt["user_defined_metrics"] == {"score": 0.95}


def test_passing_parameters_python(run_example: Runner) -> None:
    run = run_example("examples/03-parameters/passing_parameters_python.py")
    run_log = run.succeeded()
    assert statuses(run_log["steps"]) == {
        "write parameters": "SUCCESS",
        "read parameters": "SUCCESS",
        "success": "SUCCESS",
    }
    check_written_parameters(run_log)


@pytest.mark.cluster
def test_passing_parameters_python_on_the_cluster(run_example: Runner) -> None:
    """Pickled objects and pydantic models cross worker processes."""
    run = run_example("examples/03-parameters/passing_parameters_python.py", config=DASK)
    run_log = run.succeeded()
    assert run_log["run_config"]["pipeline-executor"]["config"]["n_workers"] == 2
    assert statuses(run_log["steps"]) == {
        "write parameters": "SUCCESS",
        "read parameters": "SUCCESS",
        "success": "SUCCESS",
    }
    check_written_parameters(run_log)


def test_passing_parameters_shell(run_example: Runner) -> None:
    run = run_example("examples/03-parameters/passing_parameters_shell.py")
    run_log = run.succeeded()
    assert statuses(run_log["steps"]) == {
        "write in shell": "SUCCESS",
        "read in python": "SUCCESS",
        "read in shell": "SUCCESS",
        "success": "SUCCESS",
    }
    assert {name: parameter(run_log, name) for name in run_log["parameters"]} == {
        "shell_integer": 41,
        "shell_string": "from the shell",
        "shell_list": [1, 2, 3],
        "shell_score": 0.5,
        "next_integer": 42,
    }
    assert run_log["parameters"]["shell_score"]["kind"] == "metric"
    assert "next_integer=42" in step_log(run, "read in shell")


def test_passing_parameters_notebook(run_example: Runner) -> None:
    run = run_example("examples/03-parameters/passing_parameters_notebook.py")
    run_log = run.succeeded()
    assert statuses(run_log["steps"]) == {
        "write parameters": "SUCCESS",
        "notebook": "SUCCESS",
        "read notebook returns": "SUCCESS",
        "success": "SUCCESS",
    }
    assert parameter(run_log, "nb_integer") == 2
    assert parameter(run_log, "nb_string") == "hello from the notebook"
    assert parameter(run_log, "nb_dict") == {"ham": "Yes, please!!", "x": 11}
    outputs = run_log["steps"]["notebook"]["attempts"][0]["output_parameters"]
    assert set(outputs) == {"nb_integer", "nb_string", "nb_dict"}
    executed = run.catalog / "write_parameters_nb-notebook_out.ipynb"
    assert "2 hello from the notebook" in notebook_output(executed)


# 04-catalog -------------------------------------------------------------------------


def test_catalog(run_example: Runner) -> None:
    run = run_example("examples/04-catalog/catalog.py")
    run_log = run.succeeded()
    steps = run_log["steps"]
    assert statuses(steps) == dict.fromkeys(
        [
            "generate data",
            "delete local data",
            "write in shell",
            "record large file",
            "write in notebook",
            "read everything",
            "success",
        ],
        "SUCCESS",
    )
    stored = sorted(p.name for p in (run.catalog / "data").iterdir())
    assert stored == ["data.csv", "hello.txt", "notebook.txt", "shell.txt"]
    assert (run.catalog / "data" / "shell.txt").read_text().strip() == "Hello from shell"

    def records(step: str, stage: str) -> list[str]:
        return sorted(r["name"] for r in steps[step]["data_catalog"] if r["stage"] == stage)

    assert records("generate data", "put") == ["data/data.csv", "data/hello.txt"]
    assert records("write in shell", "get") == ["data/hello.txt"]
    assert records("write in shell", "put") == ["data/shell.txt"]
    assert records("record large file", "put") == ["data/large.txt"]  # recorded, not copied
    assert records("write in notebook", "put") == ["data/notebook.txt"]
    assert records("read everything", "get") == [
        "data/data.csv",
        "data/hello.txt",
        "data/notebook.txt",
        "data/shell.txt",
    ]
    assert (run.catalog / "catalog_nb-write in notebook_out.ipynb").exists()


# 06-parallel ------------------------------------------------------------------------


def check_hello_branches(run: ExampleRun, step: dict[str, Any], prefix: str) -> None:
    """Both branches of a Parallel of two hello workflows: every step SUCCESS."""
    assert step["status"] == "SUCCESS"
    assert step["step_type"] == "parallel"
    assert step["attempts"] == []
    assert sorted(step["branches"]) == [f"{prefix}.branch1", f"{prefix}.branch2"]
    for key in ("branch1", "branch2"):
        branch = step["branches"][f"{prefix}.{key}"]
        assert branch["status"] == "SUCCESS"
        expected = [f"{prefix}.{key}.{name}" for name in HELLO_WORKFLOW]
        assert statuses(branch["steps"]) == dict.fromkeys(expected, "SUCCESS")
        assert "Hello World!" in step_log(run, f"{prefix}.{key}.hello_python")
        assert "Hello World!" in step_log(run, f"{prefix}.{key}.hello_shell")
        executed = run.catalog / f"simple_notebook-{prefix}.{key}.hello_notebook_out.ipynb"
        assert "Hello World!" in notebook_output(executed)


@pytest.mark.cluster
def test_parallel(run_example: Runner) -> None:
    run = run_example("examples/06-parallel/parallel.py", config=DEFAULT)
    run_log = run.succeeded()
    steps = run_log["steps"]
    assert list(steps) == ["parallel_step", "continue_processing", "success"]
    assert statuses(steps) == dict.fromkeys(steps, "SUCCESS")
    branch1 = steps["parallel_step"]["branches"]["parallel_step.branch1"]
    assert branch1["steps"]["parallel_step.branch1.hello_python"]["status"] == "SUCCESS"
    check_hello_branches(run, steps["parallel_step"], "parallel_step")
    # continue_processing ran only after both branches had ended.
    branch_ends = [
        step["attempts"][0]["end_time"]
        for branch in steps["parallel_step"]["branches"].values()
        for step in branch["steps"].values()
    ]
    continued = steps["continue_processing"]["attempts"][0]["start_time"]
    assert max(branch_ends) <= continued


@pytest.mark.cluster
def test_parallel_on_worker_threads(run_example: Runner, tmp_path: Path) -> None:
    # processes: false, the run's own LocalCluster of worker threads (it failed to start).
    config = tmp_path / "threads.yaml"
    config.write_text(
        "pipeline-executor:\n  type: dask\n  config:\n    processes: false\n"
        "    dashboard_address: 127.0.0.1:0\n",
        encoding="utf-8",
    )
    run = run_example("examples/06-parallel/parallel.py", config=str(config))
    run_log = run.succeeded()
    assert "worker threads x 4 threads" in run.process.stdout, run.output
    check_hello_branches(run, run_log["steps"]["parallel_step"], "parallel_step")


@pytest.mark.cluster
def test_nesting(run_example: Runner) -> None:
    run = run_example("examples/06-parallel/nesting.py", config=DEFAULT)
    run_log = run.succeeded()
    steps = run_log["steps"]
    assert statuses(steps) == {"nested_parallel": "SUCCESS", "success": "SUCCESS"}
    outer = steps["nested_parallel"]
    assert outer["status"] == "SUCCESS"
    assert sorted(outer["branches"]) == ["nested_parallel.branch1", "nested_parallel.branch2"]
    for key in ("branch1", "branch2"):
        prefix = f"nested_parallel.{key}"
        branch = outer["branches"][prefix]
        assert branch["status"] == "SUCCESS"
        assert statuses(branch["steps"]) == {
            f"{prefix}.parallel_step": "SUCCESS",
            f"{prefix}.success": "SUCCESS",
        }
        check_hello_branches(
            run, branch["steps"][f"{prefix}.parallel_step"], f"{prefix}.parallel_step"
        )
    # 1 + 2 x (1 + 1 + 2 x 5) steps in all, every one a success.
    everything = dict(all_steps(steps))
    assert len(everything) == 2 + 2 * (2 + 2 * len(HELLO_WORKFLOW))
    assert {step["status"] for step in everything.values()} == {"SUCCESS"}
    notebooks = sorted(p.name for p in run.catalog.glob("*_out.ipynb"))
    assert len(notebooks) == 4, notebooks


# Dynamic pipelines (issue 3): Conditional, Map, mocking, retries, Loop ---------------

ON_THE_CLUSTER = pytest.param(DASK, marks=pytest.mark.cluster, id="cluster")


def parameters(run_log: dict[str, Any]) -> dict[str, Any]:
    """The run's final parameters, name -> value."""
    return {name: record["value"] for name, record in run_log["parameters"].items()}


def attempts(step: dict[str, Any]) -> list[tuple[int, str]]:
    """(attempt number, status) of every attempt of a step, in order."""
    return [(a["attempt_number"], a["status"]) for a in step["attempts"]]


def check_branch(
    step: dict[str, Any], branch: str, steps: list[str], status: str = "SUCCESS"
) -> dict[str, Any]:
    """One branch of a composite step: its status and its steps (all SUCCESS if it did)."""
    record = step["branches"][branch]
    assert record["status"] == status, (branch, record)
    if status == "SUCCESS":
        expected = dict.fromkeys([f"{branch}.{name}" for name in steps], "SUCCESS")
        assert statuses(record["steps"]) == expected
    return record


@pytest.mark.parametrize(
    ("rows", "route", "method", "step"),
    [
        (None, "small", "in-memory", "fit in memory"),
        ("5000", "large", "mini-batch", "fit in batches"),
    ],
    ids=["small", "large"],
)
def test_conditional(
    run_example: Runner, rows: str | None, route: str, method: str, step: str
) -> None:
    env = {"RUNNABLE_PRM_rows": rows} if rows else {}
    run = run_example("examples/02-sequential/conditional.py", env=env)
    run_log = run.succeeded()
    steps = run_log["steps"]
    assert statuses(steps) == dict.fromkeys(
        ["choose route", "train", "report", "success"], "SUCCESS"
    )
    train = steps["train"]
    assert train["step_type"] == "conditional"
    assert list(train["branches"]) == [f"train.{route}"]  # the other branch never ran
    check_branch(train, f"train.{route}", [step, "success"])
    assert parameters(run_log)["route"] == route
    assert parameters(run_log)["method"] == method
    assert f"route={route} method={method}" in step_log(run, "report")


def test_conditional_without_a_matching_branch(run_example: Runner) -> None:
    run = run_example("examples/02-sequential/conditional.py", env={"RUNNABLE_PRM_rows": "0"})
    run_log = run.failed()
    steps = run_log["steps"]
    assert steps["choose route"]["status"] == "SUCCESS"
    assert steps["train"]["status"] == "FAIL"
    assert "report" not in steps
    message = steps["train"]["message"]
    assert "empty" in message and "small" in message and "large" in message, message


def test_map_over_parameters_file(run_example: Runner) -> None:
    run = run_example("examples/07-map/map_parameters.py")
    run_log = run.succeeded()
    steps = run_log["steps"]
    assert statuses(steps) == {"sweep": "SUCCESS", "pick best": "SUCCESS", "success": "SUCCESS"}
    sweep = steps["sweep"]
    assert sweep["step_type"] == "map"
    assert sorted(sweep["branches"]) == ["sweep.1", "sweep.2", "sweep.3"]
    for item, mae in [(1, 2.0), (2, 1.8), (3, 2.267)]:
        branch = check_branch(sweep, f"sweep.{item}", ["evaluate", "success"])
        evaluate = branch["steps"][f"sweep.{item}.evaluate"]["attempts"][0]
        assert evaluate["input_parameters"]["window"]["value"] == item
        assert evaluate["user_defined_metrics"] == {"mae": mae}
        assert f"window={item} mae={mae}" in step_log(run, f"sweep.{item}.evaluate")
    assert parameters(run_log) == {"windows": [1, 2, 3], "mae": [2.0, 1.8, 2.267], "best_window": 2}


@pytest.mark.parametrize("config", [LOCAL, ON_THE_CLUSTER])
def test_map_over_returned_list(run_example: Runner, config: str) -> None:
    run = run_example("examples/07-map/map_returned_list.py", config=config)
    run_log = run.succeeded()
    steps = run_log["steps"]
    expected = ["list models", "train", "choose", "success"]
    assert statuses(steps) == dict.fromkeys(expected, "SUCCESS")
    train = steps["train"]
    assert train["step_type"] == "map"
    assert sorted(train["branches"]) == ["train.last", "train.mean", "train.median"]
    for model, forecast in [("mean", 5.0), ("median", 4.5), ("last", 7.0)]:
        branch = check_branch(train, f"train.{model}", ["fit", "score", "success"])
        score = branch["steps"][f"train.{model}.score"]["attempts"][0]
        assert score["input_parameters"]["forecast"]["value"] == forecast  # from fit
    final = parameters(run_log)
    assert final["models"] == ["mean", "median", "last"]
    assert final["forecast"] == [5.0, 4.5, 7.0]
    assert final["error"] == [4.333, 4.833, 2.333]
    assert final["chosen"] == "last"


@pytest.mark.parametrize("config", [LOCAL, ON_THE_CLUSTER])
def test_map_in_batches(run_example: Runner, config: str) -> None:
    run = run_example("examples/07-map/batched.py", config=config)
    run_log = run.succeeded()
    steps = run_log["steps"]
    assert statuses(steps) == {"list files": "SUCCESS", "count": "SUCCESS", "success": "SUCCESS"}
    count = steps["count"]
    assert len(count["branches"]) == 1000
    assert set(statuses(count["branches"]).values()) == {"SUCCESS"}
    branch = check_branch(count, "count.part-0123.csv", ["lines", "success"])
    lines = branch["steps"]["count.part-0123.csv.lines"]["attempts"][0]
    assert lines["input_parameters"]["file"]["value"] == "part-0123.csv"
    assert lines["output_parameters"]["line_count"]["value"] == 123 % 7
    assert parameters(run_log)["line_count"] == 2997


def test_map_reducer_lambda(run_example: Runner) -> None:
    run = run_example("examples/07-map/reducer_lambda.py")
    run_log = run.succeeded()
    steps = run_log["steps"]
    assert statuses(steps) == {"worst case": "SUCCESS", "report": "SUCCESS", "success": "SUCCESS"}
    assert sorted(steps["worst case"]["branches"]) == [
        "worst case.1",
        "worst case.2",
        "worst case.3",
    ]
    assert parameters(run_log) == {"windows": [1, 2, 3], "worst_mae": 2.267}


def test_map_reducer_dotted_path(run_example: Runner) -> None:
    run = run_example("examples/07-map/reducer_dotted.py")
    run_log = run.succeeded()
    steps = run_log["steps"]
    expected = ["average", "worst case", "report", "success"]
    assert statuses(steps) == dict.fromkeys(expected, "SUCCESS")
    assert parameters(run_log) == {"windows": [1, 2, 3], "mean_mae": 2.022, "worst_mae": 2.267}
    assert "worst_mae=2.267 mean_mae=2.022" in step_log(run, "report")


def test_map_failing_iteration(run_example: Runner) -> None:
    run = run_example("examples/07-map/failing_iteration.py")
    run_log = run.failed()
    steps = run_log["steps"]
    assert statuses(steps) == {"sweep": "FAIL", "fail": "SUCCESS"}  # pick best never ran
    sweep = steps["sweep"]
    assert statuses(sweep["branches"]) == {
        "sweep.1": "SUCCESS",
        "sweep.20": "FAIL",
        "sweep.3": "SUCCESS",  # runs although sweep.20 failed
    }
    failed = sweep["branches"]["sweep.20"]["steps"]
    assert statuses(failed) == {"sweep.20.evaluate": "FAIL", "sweep.20.fail": "SUCCESS"}
    assert "ValueError" in failed["sweep.20.evaluate"]["attempts"][0]["message"]
    check_branch(sweep, "sweep.3", ["evaluate", "success"])
    assert parameters(run_log) == {"windows": [1, 20, 3]}  # nothing reduced


MOCKING_STEPS = ["download data", "train", "evaluate", "publish", "success"]


def file_state(path: Path) -> int | None:
    """A file's modification time, or None when it does not exist."""
    return path.stat().st_mtime_ns if path.exists() else None


def test_mocking_real_run(run_example: Runner) -> None:
    run = run_example("examples/08-mocking/train_and_publish.py")
    run_log = run.succeeded()
    assert list(run_log["steps"]) == MOCKING_STEPS
    assert statuses(run_log["steps"]) == dict.fromkeys(MOCKING_STEPS, "SUCCESS")
    assert parameters(run_log) == {"forecast": 7.0, "mae": 2.333}
    assert run_log["parameters"]["mae"]["kind"] == "metric"
    assert (ROOT / "data" / "published.txt").read_text(encoding="utf-8").strip() == "7.0"
    assert "publishing forecast=7.0 mae=2.333" in step_log(run, "publish")


@pytest.mark.parametrize("patched", [False, True], ids=["mocked", "patched"])
def test_mocking(run_example: Runner, patched: bool) -> None:
    config = "examples/configs/mocked-patched.yaml" if patched else "examples/configs/mocked.yaml"
    written = [ROOT / "data" / "series.csv", ROOT / "data" / "published.txt"]
    before = [file_state(path) for path in written]
    run = run_example("examples/08-mocking/train_and_publish.py", config=config)
    run_log = run.succeeded()
    assert list(run_log["steps"]) == MOCKING_STEPS
    assert statuses(run_log["steps"]) == dict.fromkeys(MOCKING_STEPS, "SUCCESS")
    assert [file_state(path) for path in written] == before  # no real step wrote anything
    if patched:
        assert parameters(run_log) == {"forecast": 7.0, "mae": 2.333}
        assert "fake forecaster" in step_log(run, "train")
        assert "would publish forecast=7.0 mae=2.333" in step_log(run, "publish")
    else:
        assert parameters(run_log) == {}


def test_mocking_unit_tests() -> None:
    """examples/08-mocking/test_shape.py passes when run as its docstring says."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
    process = subprocess.run(
        [sys.executable, "-m", "pytest", "examples/08-mocking/test_shape.py", "-q"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=EXAMPLE_TIMEOUT,
        check=False,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    assert "2 passed" in process.stdout


def test_retry_flaky_step(run_example: Runner) -> None:
    run = run_example("examples/09-retry/flaky.py")
    run_log = run.succeeded()
    steps = run_log["steps"]
    assert statuses(steps) == dict.fromkeys(["download data", "count rows", "success"], "SUCCESS")
    download = steps["download data"]
    assert attempts(download) == [(1, "FAIL"), (2, "FAIL"), (3, "SUCCESS")]
    assert "ConnectionError" in download["attempts"][0]["message"]
    assert attempts(steps["count rows"]) == [(1, "SUCCESS")]
    assert parameters(run_log) == {"download_attempts": 3, "rows": 9}
    counter = Path(tempfile.gettempdir()) / f"runnable-dask-flaky-{run.run_id}.count"
    assert not counter.exists()


def test_resume_failed_run(run_example: Runner) -> None:
    run = run_example("examples/09-retry/resume.py")
    first = run.failed()
    assert statuses(first["steps"]) == {"prepare": "SUCCESS", "train": "FAIL", "fail": "SUCCESS"}
    assert "RuntimeError" in first["steps"]["train"]["attempts"][0]["message"]
    assert parameters(first) == {"rows": 9}

    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
    environ.update({"RUNNABLE_CONFIGURATION_FILE": LOCAL, "TRAINING_FIXED": "1"})
    retry = subprocess.run(
        [str(Path(sys.executable).with_name("runnable-dask")), "retry", run.run_id],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=EXAMPLE_TIMEOUT,
        check=False,
    )
    assert retry.returncode == 0, retry.stdout + retry.stderr
    resumed = run.run_log
    assert resumed["status"] == "SUCCESS"
    steps = resumed["steps"]
    assert steps["prepare"]["attempts"] == first["steps"]["prepare"]["attempts"]  # not re-run
    assert attempts(steps["train"]) == [(1, "FAIL"), (2, "SUCCESS")]
    assert attempts(steps["report"]) == [(1, "SUCCESS")]
    assert steps["success"]["status"] == "SUCCESS"
    assert parameters(resumed) == {"rows": 9, "accuracy": 0.9}
    assert "rows=9 accuracy=0.9" in step_log(run, "report")


def check_training_loop(run: ExampleRun, epochs: int) -> dict[str, Any]:
    """The loop ran ``epochs`` iterations, each halving the loss; return the run log."""
    run_log = run.succeeded()
    steps = run_log["steps"]
    assert statuses(steps) == dict.fromkeys(["training", "report", "success"], "SUCCESS")
    training = steps["training"]
    assert training["step_type"] == "loop"
    assert sorted(training["branches"]) == [f"training.{i}" for i in range(epochs)]
    for i in range(epochs):
        branch = check_branch(training, f"training.{i}", ["train epoch", "success"])
        attempt = branch["steps"][f"training.{i}.train epoch"]["attempts"][0]
        assert attempt["output_parameters"]["epochs_run"]["value"] == i + 1  # index i
        assert attempt["output_parameters"]["loss"]["value"] == 0.5 ** (i + 1)
        assert f"epoch {i}: loss={0.5 ** (i + 1)}" in step_log(run, f"training.{i}.train epoch")
    return run_log


@pytest.mark.parametrize("config", [LOCAL, ON_THE_CLUSTER])
def test_loop_until_converged(run_example: Runner, config: str) -> None:
    run = run_example("examples/10-loop/until_converged.py", config=config)
    run_log = check_training_loop(run, epochs=4)
    final = parameters(run_log)
    assert (final["loss"], final["target"], final["converged"], final["epochs_run"]) == (
        0.0625,
        0.1,
        True,
        4,
    )
    assert "after 4 epochs: loss=0.0625 converged=True" in step_log(run, "report")


def test_loop_max_iterations(run_example: Runner) -> None:
    run = run_example("examples/10-loop/max_iterations.py")
    run_log = check_training_loop(run, epochs=3)
    final = parameters(run_log)
    assert (final["loss"], final["converged"], final["epochs_run"]) == (0.125, False, 3)
    assert "after 3 epochs: loss=0.125 converged=False" in step_log(run, "report")


# ml_sweep (issue 6): a scikit-learn sweep --------------------------------------------

SWEEP = "examples/ml_sweep/sweep.py"
DEFAULT_GRID = {
    "logistic_regression": ["C=0.01", "C=0.1", "C=1.0", "C=10.0"],
    "random_forest": [f"n_estimators={n}, max_depth={d}" for n in (50, 200) for d in (4, None)],
    "gradient_boosting": [f"learning_rate={r}, max_depth={d}" for r in (0.05, 0.2) for d in (2, 3)],
}
SMALL_GRID = {
    "RUNNABLE_PRM_grids": json.dumps(
        {
            "logistic_regression": {"C": [0.1, 1.0]},
            "random_forest": {"n_estimators": [20], "max_depth": [3]},
            "gradient_boosting": {"n_estimators": [20], "max_depth": [2]},
        }
    ),
    "RUNNABLE_PRM_cv_folds": "3",
}


def sweep_metrics(run_log: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each ``fit`` step's metrics, by internal name, as stored in the run log."""
    return {
        name: step["attempts"][-1]["user_defined_metrics"]
        for name, step in all_steps(run_log["steps"])
        if step["name"] == "fit"
    }


def assert_sweep_report(run: ExampleRun, run_log: dict[str, Any], configs: int) -> None:
    """The chart and summary are in the catalog, and name the winner the run log holds."""
    winner = parameter(run_log, "winner")
    chart = run.catalog / "report" / "sweep-scores.png"
    assert chart.read_bytes().startswith(b"\x89PNG"), run.output
    summary = (run.catalog / "report" / "summary.md").read_text(encoding="utf-8")
    assert f"{configs} configurations in 3 model families" in summary
    assert f"Winner: **{winner}**" in summary
    assert "![Every configuration's cross-validated accuracy](sweep-scores.png)" in summary
    assert 0.8 < parameter(run_log, "test_accuracy") <= 1


@pytest.mark.cluster
def test_ml_sweep_default_configuration(run_example: Runner) -> None:
    run = run_example(SWEEP, config=DEFAULT)
    run_log = run.succeeded()

    found = sweep_metrics(run_log)
    expected = {
        f"sweep.{family}.grid.{config}.fit": f"{family}_cv_accuracy"
        for family, configs in DEFAULT_GRID.items()
        for config in configs
    }
    assert sorted(found) == sorted(expected)  # one fit per configuration of the grid
    for name, metric_name in expected.items():
        assert list(found[name]) == [metric_name], name
        assert 0.8 < found[name][metric_name] <= 1, name
    for family, configs in DEFAULT_GRID.items():
        result = parameter(run_log, f"{family}_result")
        assert result["cv_accuracy"] == {
            config: found[f"sweep.{family}.grid.{config}.fit"][f"{family}_cv_accuracy"]
            for config in configs
        }
        assert result["cv_accuracy"][result["best"]] == max(result["cv_accuracy"].values())
        assert run_log["parameters"][f"{family}_best_model"]["kind"] == "object"
    assert_sweep_report(run, run_log, configs=12)
    assert "Dashboard: http://127.0.0.1:" in run.process.stdout


def test_ml_sweep_small_grid_from_the_environment(run_example: Runner) -> None:
    run = run_example(SWEEP, env=SMALL_GRID)
    run_log = run.succeeded()

    assert sorted(sweep_metrics(run_log)) == [
        "sweep.gradient_boosting.grid.n_estimators=20, max_depth=2.fit",
        "sweep.logistic_regression.grid.C=0.1.fit",
        "sweep.logistic_regression.grid.C=1.0.fit",
        "sweep.random_forest.grid.n_estimators=20, max_depth=3.fit",
    ]
    log = step_log(run, "sweep.logistic_regression.grid.C=0.1.fit")
    assert log.startswith("logistic_regression C=0.1: accuracy 0.9")
    assert_sweep_report(run, run_log, configs=4)


def fits_from_the_cache(run_log: dict[str, Any]) -> dict[str, str | None]:
    """Each ``fit`` step: the run its outputs came from, or None where it ran."""
    return {
        name: step["attempts"][-1]["cached_from"]
        for name, step in all_steps(run_log["steps"])
        if step["name"] == "fit"
    }


def test_ml_sweep_reruns_only_what_changed(run_example: Runner) -> None:
    first = run_example(SWEEP, env=SMALL_GRID)
    first.succeeded()
    again = run_example(SWEEP, env=SMALL_GRID)
    unchanged = again.succeeded()
    grids = json.loads(SMALL_GRID["RUNNABLE_PRM_grids"])
    grids["logistic_regression"]["C"].append(10.0)  # one more grid point
    more = run_example(SWEEP, env={**SMALL_GRID, "RUNNABLE_PRM_grids": json.dumps(grids)})
    grown = more.succeeded()

    assert "0 of 4 fits came from the step cache" in first.process.stdout
    assert set(fits_from_the_cache(unchanged).values()) == {first.run_id}
    assert "4 of 4 fits came from the step cache" in again.process.stdout
    assert "Cached:    10 of 10 tasks came from the cache" in again.process.stdout
    assert parameter(unchanged, "winner") == parameter(first.run_log, "winner")
    assert_sweep_report(again, unchanged, configs=4)  # restored into the new run's catalog
    ran = [name for name, source in fits_from_the_cache(grown).items() if source is None]
    assert ran == ["sweep.logistic_regression.grid.C=10.0.fit"]  # only the new point
    assert "4 of 5 fits came from the step cache" in more.process.stdout
    assert_sweep_report(more, grown, configs=5)


def test_ml_sweep_refuses_a_bad_grid_before_fitting(run_example: Runner) -> None:
    grids = {
        "logistic_regression": {"C": 0.1},
        "random_forest": {"max_dept": [3]},
        "gradient_boost": {"max_depth": [2]},
    }
    run = run_example(SWEEP, env={"RUNNABLE_PRM_grids": json.dumps(grids)})
    run_log = run.failed()

    check = run_log["steps"]["check grids"]
    assert check["status"] == "FAIL"
    for problem in (
        "grids.gradient_boost: not a model family (did you mean 'gradient_boosting'?)",
        "grids.logistic_regression.C: got 0.1, expected a non-empty list",
        "grids.random_forest.max_dept: not a hyper-parameter of RandomForestClassifier "
        "(did you mean 'max_depth'?)",
        "grids.gradient_boosting: missing; every family needs a grid",
    ):
        assert problem in check["message"], check["message"]
    assert "sweep" not in run_log["steps"]  # nothing was fitted
    assert not sweep_metrics(run_log)
