"""ShellTask: parameters in as environment variables, exported names out, output to the log."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runnable_dask import ExecutionFailedError, Pipeline, PythonTask, ShellTask, metric
from runnable_dask.runtime.shell_task import ShellCommandError, run_shell
from runnable_dask.runtime.tokens import Param


def shell(command: str, params: dict[str, Any] | None = None, returns: list[Any] | None = None):
    """Run a command as a ShellTask would; return (returns, log text)."""
    log = io.StringIO()
    task = ShellTask(name="sh", command=command, returns=returns or [])
    values = {n: Param(kind="json", value=v) for n, v in (params or {}).items()}
    outputs = run_shell(task, values, log, "run", "step")
    return {name: param.value for name, param in outputs.items()}, log.getvalue()


def test_parameters_arrive_as_environment_variables(workdir: Path) -> None:
    _, log = shell(
        'echo "$text|$number|$items|$mapping"',
        params={"text": "plain words", "number": 3, "items": [1, 2], "mapping": {"a": 1}},
    )
    assert log == 'plain words|3|[1, 2]|{"a": 1}\n'


def test_pickled_parameters_are_not_exported(workdir: Path) -> None:
    log = io.StringIO()
    task = ShellTask(name="sh", command='echo "[${model-unset}]"')
    run_shell(task, {"model": Param(kind="object", value=object())}, log, "run", "step")
    assert log.getvalue() == "[unset]\n"


def test_path_and_the_rest_of_the_environment_are_kept(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_SETTING", "kept")
    _, log = shell('echo "$PATH"; echo "$MY_SETTING"; command -v ls >/dev/null && echo found')
    assert log.splitlines() == [os.environ["PATH"], "kept", "found"]


def test_exported_names_are_returned_and_json_decoded(workdir: Path) -> None:
    returns, _ = shell(
        "export count=3; export items='[1, 2]'; export word=hello",
        returns=["count", "items", "word"],
    )
    assert returns == {"count": 3, "items": [1, 2], "word": "hello"}


def test_a_variable_set_without_export_is_also_returned(workdir: Path) -> None:
    returns, _ = shell("answer=42", returns=["answer"])
    assert returns == {"answer": 42}


def test_a_returned_value_with_newlines_and_spaces_survives(workdir: Path) -> None:
    returns, _ = shell("export text=$'two\\nlines  here'", returns=["text"])
    assert returns == {"text": "two\nlines  here"}


def test_a_non_zero_exit_fails_with_the_status(workdir: Path) -> None:
    with pytest.raises(ShellCommandError, match=r"command exited with status 3.*last output: oops"):
        shell("echo oops; exit 3")


def test_a_non_zero_exit_fails_even_with_returns(workdir: Path) -> None:
    with pytest.raises(ShellCommandError, match=r"exited with status 4"):
        shell("export x=1; exit 4", returns=["x"])


def test_a_declared_return_not_set_fails(workdir: Path) -> None:
    with pytest.raises(ShellCommandError, match=r"did not set \['missing'\].*export missing="):
        shell("export present=1", returns=["present", "missing"])


def test_stderr_goes_to_the_log_too(workdir: Path) -> None:
    _, log = shell("echo out; echo err >&2")
    assert log == "out\nerr\n"


def test_the_command_runs_in_the_working_folder(workdir: Path) -> None:
    _, log = shell("pwd")
    assert Path(log.strip()).resolve() == workdir.resolve()


def test_only_the_commands_own_output_reaches_the_log(
    run: Callable[..., Any],
    workdir: Path,
    step_log: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("API_TOKEN", "hunter2-secret")
    task = ShellTask(
        name="deploy",
        command='test -n "$API_TOKEN" && echo deploying; export status=ok; export score=0.5',
        secrets=["API_TOKEN"],
        returns=["status", metric("score")],
    )
    run_log = run(Pipeline(steps=[task]))
    assert step_log("deploy") == "deploying\n"
    assert "hunter2-secret" not in (workdir / ".run_log_store" / "test-run.json").read_text()
    attempt = run_log.steps["deploy"].attempts[0]
    assert attempt.user_defined_metrics == {"score": 0.5}
    assert attempt.output_parameters["status"].value == "ok"


def test_a_missing_secret_fails_the_step_naming_it(run: Callable[..., Any], workdir: Path) -> None:
    task = ShellTask(name="deploy", command="echo hi", secrets=["NOT_SET_ANYWHERE"])
    with pytest.raises(ExecutionFailedError, match=r"secrets \['NOT_SET_ANYWHERE'\] are not set"):
        run(Pipeline(steps=[task]))


def test_a_failing_command_fails_the_run_with_the_status(
    run: Callable[..., Any], stored_run_log: Callable[..., Any], step_log: Callable[..., str]
) -> None:
    def never() -> None:
        return None

    pipeline = Pipeline(
        steps=[
            ShellTask(name="broken", command="echo before failing; exit 2"),
            PythonTask(name="after", function=never),
        ]
    )
    with pytest.raises(
        ExecutionFailedError, match="broken: ShellCommandError: command exited with status 2"
    ):
        run(pipeline)
    run_log = stored_run_log()
    assert run_log.steps["broken"].status == "FAIL"
    assert "after" not in run_log.steps
    assert "before failing" in step_log("broken")
