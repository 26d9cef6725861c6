"""Run every example as a user would, and check what the user would look at.

Each example runs as ``python examples/<folder>/<file>.py`` from the repository root, in
a subprocess, with ``RUNNABLE_RUN_ID`` set so the test finds its run log in
``.run_log_store/<run_id>.json`` and its catalog in ``.catalog/<run_id>/``. Both are
removed afterwards (and ``data/``, if the example created it).

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
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
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
def run_example(request: pytest.FixtureRequest) -> Iterator[Runner]:
    """Run an example from the repository root; clean up its run log and catalog."""
    run_ids: list[str] = []
    had_data = (ROOT / "data").exists()

    def _run(example: str, config: str = LOCAL, env: dict[str, str] | None = None) -> ExampleRun:
        run_id = f"test-{request.node.name}-{uuid.uuid4().hex[:8]}"
        for char in "[]/ ":
            run_id = run_id.replace(char, "-")
        run_ids.append(run_id)
        environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
        environ["RUNNABLE_RUN_ID"] = run_id
        if config:
            environ["RUNNABLE_CONFIGURATION_FILE"] = config
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
