"""``runnable-dask execute``: both entry forms, the options, and every way loading fails."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from runnable_dask.stores.runlog_store import RunLogStore

Invoke = Callable[..., Result]


def test_main_form_runs_main_with_the_options_in_the_environment(
    invoke: Invoke, flow: Path, local_config: Path, store: RunLogStore
) -> None:
    params = flow.parent / "params.yaml"
    params.write_text("alpha: 0.5\n", encoding="utf-8")
    result = invoke("execute", "flow.py", "-c", "local.yaml", "-p", "params.yaml", "--run-id", "r1")
    assert result.exit_code == 0, result.output
    assert "Run r1 SUCCESS" in result.stdout
    assert store.read("r1").status == "SUCCESS"
    seen = json.loads((flow.parent / "seen.json").read_text(encoding="utf-8"))
    assert seen["RUNNABLE_RUN_ID"] == "r1"
    assert seen["RUNNABLE_CONFIGURATION_FILE"] == str(local_config)
    assert seen["RUNNABLE_PARAMETERS_FILE"] == str(params)
    assert seen["RUNNABLE_DASK_ENTRY"] == str(flow)
    assert seen["cwd"] == str(flow.parent)
    # The run's settings do not outlive it.
    assert not [name for name in os.environ if name.startswith("RUNNABLE_")]


def test_function_form_runs_the_returned_pipeline_with_run_id_and_tag(
    invoke: Invoke, flow: Path, local_config: Path, store: RunLogStore
) -> None:
    result = invoke(
        "execute", "flow.py:passing", "-c", "local.yaml", "--run-id", "r2", "--tag", "nightly"
    )
    assert result.exit_code == 0, result.output
    run_log = store.read("r2")
    assert (run_log.status, run_log.tag) == ("SUCCESS", "nightly")
    assert run_log.step("first").status == "SUCCESS"


def test_function_form_passes_the_parameters_file(
    invoke: Invoke, flow: Path, local_config: Path, store: RunLogStore
) -> None:
    (flow.parent / "params.yaml").write_text("alpha: 0.25\n", encoding="utf-8")
    result = invoke(
        "execute",
        "flow.py:with_parameter",
        "-c",
        "local.yaml",
        "-p",
        "params.yaml",
        "--run-id",
        "p",
    )
    assert result.exit_code == 0, result.output
    assert store.read("p").parameters["scaled"].value == 0.5


def test_main_form_parameters_reach_the_run(
    invoke: Invoke, flow: Path, local_config: Path, store: RunLogStore
) -> None:
    (flow.parent / "params.yaml").write_text("alpha: 0.25\n", encoding="utf-8")
    result = invoke("execute", "flow.py", "-c", "local.yaml", "-p", "params.yaml", "--run-id", "m")
    assert result.exit_code == 0, result.output
    assert store.read("m").parameters["alpha"].value == 0.25


def test_a_failed_run_exits_1_with_the_summary_and_no_traceback_of_ours(
    invoke: Invoke, flow: Path, local_config: Path, store: RunLogStore
) -> None:
    result = invoke("execute", "flow.py:failing", "-c", "local.yaml", "--run-id", "bad")
    assert result.exit_code == 1
    assert "Run bad FAIL" in result.stdout
    assert "ValueError: boom: bad input" in result.stdout
    # The summary quotes the end of the failed step's log: the user's own traceback,
    # from their function down, and nothing of runnable_dask's or the CLI's.
    assert 'flow.py", line' in result.stdout
    assert "runnable_dask" not in result.output.replace("runnable_dask.exceptions", "")
    assert store.read("bad").status == "FAIL"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("missing.py", "no such file: 'missing.py'"),
        ("flow.py:nowhere", "flow.py has no function nowhere(); found: boom, failing, flaky,"),
        ("flow.py:not_a_pipeline", "flow.py:not_a_pipeline() returned int, expected"),
    ],
)
def test_what_cannot_be_loaded_is_a_usage_error(
    invoke: Invoke, flow: Path, target: str, message: str
) -> None:
    result = invoke("execute", target)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_tag_needs_the_function_form(invoke: Invoke, flow: Path, store: RunLogStore) -> None:
    result = invoke("execute", "flow.py", "--tag", "x")
    assert result.exit_code == 2
    assert "--tag needs FILE.py:function" in result.stderr
    assert not Path(store.location).exists()  # nothing ran


def test_an_error_in_the_users_file_is_one_line_naming_where(invoke: Invoke, workdir: Path) -> None:
    """Imported (it has a main()) or run as a script (it has none), the same one line."""
    (workdir / "broken_flow.py").write_text("import os\n\nvalue = undefined_name\n")
    result = invoke("execute", "broken_flow.py")
    assert result.exit_code == 1
    assert "running broken_flow.py raised NameError: name 'undefined_name' is not defined" in (
        result.stderr
    )
    assert f"({workdir / 'broken_flow.py'}, line 3)" in result.stderr
    assert "Traceback" not in result.output

    (workdir / "broken_flow.py").write_text(
        "import os\n\nvalue = undefined_name\n\n\ndef main():\n    pass\n"
    )
    result = invoke("execute", "broken_flow.py")
    assert result.exit_code == 1
    assert "importing broken_flow raised NameError: name 'undefined_name' is not defined" in (
        result.stderr
    )
    assert f"({workdir / 'broken_flow.py'}, line 3)" in result.stderr
    assert "Traceback" not in result.output


def test_a_bad_configuration_is_reported_not_raised(
    invoke: Invoke, flow: Path, workdir: Path
) -> None:
    (workdir / "typo.yaml").write_text("pipeline-executor:\n  type: lokal\n")
    result = invoke("execute", "flow.py:passing", "-c", "typo.yaml")
    assert result.exit_code == 1
    assert "type 'lokal' is unknown (did you mean 'local'?); valid types: dask, local" in (
        result.stderr
    )
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "text",
    [
        "from flow import *\n",
        "try:\n    from flow import main\nexcept ImportError:\n    raise\n",
        "import os\n\nif os.name:\n    def main():\n        import flow\n\n        flow.main()\n",
    ],
    ids=["import star", "import in a try", "def in an if"],
)
def test_a_main_bound_in_any_module_level_way_is_called(
    invoke: Invoke,
    flow: Path,
    workdir: Path,
    local_config: Path,
    text: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only a file that binds no main() runs as a script: here main() comes from flow.py
    (it runs the spy pipeline, which leaves seen.json), bound otherwise than by a def."""
    (workdir / "entry.py").write_text(text, encoding="utf-8")
    monkeypatch.delitem(sys.modules, "entry", raising=False)  # an earlier case's
    result = invoke("execute", "entry.py", "-c", "local.yaml")
    assert result.exit_code == 0, result.output
    assert (workdir / "seen.json").exists()


def test_the_files_folder_and_the_working_folder_are_importable(
    invoke: Invoke, workdir: Path, local_config: Path, store: RunLogStore
) -> None:
    (workdir / "helpers").mkdir()
    (workdir / "helpers" / "__init__.py").write_text("def hi():\n    print('hi')\n")
    (workdir / "pipelines").mkdir()
    (workdir / "pipelines" / "sibling.py").write_text("NAME = 'from the sibling'\n")
    (workdir / "pipelines" / "nested_flow.py").write_text(
        "from runnable_dask import Pipeline, PythonTask\n"
        "from helpers import hi\n"
        "import sibling\n\n"
        "def build():\n"
        "    return Pipeline(steps=[PythonTask(name=sibling.NAME, function=hi)])\n"
    )
    result = invoke(
        "execute", "pipelines/nested_flow.py:build", "-c", "local.yaml", "--run-id", "n"
    )
    assert result.exit_code == 0, result.output
    assert store.read("n").step("from the sibling").status == "SUCCESS"
