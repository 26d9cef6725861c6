"""Running pipelines with the `local` executor: order, failure paths, parameters, run ids."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runnable_dask import (
    ConfigurationError,
    ExecutionFailedError,
    Fail,
    Pipeline,
    PythonTask,
    ShellTask,
    Stub,
    Success,
    metric,
    pickled,
)
from runnable_dask.exceptions import RunLogExistsError
from runnable_dask.runtime.starts import DELAY
from runnable_dask.stores.runlog_store import RunLogStore

Run = Callable[..., Any]


def raise_value_error() -> None:
    raise ValueError("the input was bad")


def test_steps_run_in_list_order(run: Run) -> None:
    order: list[str] = []

    def record(name: str) -> Callable[[], None]:
        def step() -> None:
            order.append(name)

        return step

    names = ["one", "two", "three", "four"]
    pipeline = Pipeline(steps=[PythonTask(name=n, function=record(n)) for n in names])
    run_log = run(pipeline)
    assert order == names
    assert list(run_log.steps) == [*names, "success"]
    assert run_log.status == "SUCCESS"
    assert [s.step_type for s in run_log.steps.values()] == ["task"] * 4 + ["success"]


def test_the_returned_run_log_is_the_stored_one(
    run: Run, linear: Pipeline, stored_run_log: Callable[..., Any]
) -> None:
    returned = run(linear, tag="nightly")
    stored = stored_run_log()
    assert returned == stored
    assert stored.tag == "nightly"
    assert stored.parameters["count"].value == 3
    assert stored.dag_hash


def test_a_failing_step_fails_the_run(
    run: Run,
    stored_run_log: Callable[..., Any],
    step_log: Callable[..., str],
) -> None:
    def after() -> None:
        raise AssertionError("must not run")

    pipeline = Pipeline(
        steps=[
            Stub(name="before"),
            PythonTask(name="broken", function=raise_value_error),
            PythonTask(name="after", function=after),
        ]
    )
    with pytest.raises(ExecutionFailedError) as caught:
        run(pipeline)
    assert caught.value.failures == [("broken", "ValueError: the input was bad")]
    assert "broken: ValueError: the input was bad" in str(caught.value)
    run_log = stored_run_log()
    assert run_log.status == "FAIL"
    assert list(run_log.steps) == ["before", "broken", "fail"]
    broken = run_log.steps["broken"]
    assert (broken.status, broken.message) == ("FAIL", "ValueError: the input was bad")
    assert broken.attempts[0].status == "FAIL"
    log = step_log("broken")
    assert "Traceback (most recent call last)" in log
    assert "in raise_value_error" in log
    assert log.rstrip().endswith("ValueError: the input was bad")


def test_the_console_shows_progress_and_a_summary_pointing_at_the_failure(
    run: Run, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def slow_then_broken() -> None:
        time.sleep(3 * DELAY)  # long enough to be announced as started
        raise_value_error()

    pipeline = Pipeline(
        steps=[
            Stub(name="before"),
            PythonTask(name="quick", function=lambda: None),
            PythonTask(name="broken", function=slow_then_broken),
        ]
    )
    with pytest.raises(ExecutionFailedError):
        run(pipeline)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Run test-run on local threads (")
    stub_done = next(i for i, x in enumerate(lines) if x.startswith("  done     before ("))
    started = lines.index("  started  broken")
    failed = next(i for i, x in enumerate(lines) if x.startswith("  FAILED   broken ("))
    ended = next(i for i, x in enumerate(lines) if x.startswith("Run test-run FAIL in "))
    assert stub_done < started < failed < ended
    assert "  started  quick" not in lines  # a step that ends at once is not announced
    assert any(line.startswith("  done     quick (") for line in lines)
    summary = lines[ended:]
    assert "  Run log:   .run_log_store/test-run.json" in summary
    assert "  failed broken: ValueError: the input was bad" in summary
    log = workdir / ".catalog" / "test-run" / "logs" / "broken.execution.log"
    assert f"         log: {log}" in summary


def test_what_a_python_step_prints_is_its_log(run: Run, step_log: Callable[..., str]) -> None:
    def chatty() -> None:
        print("hello from the step")
        print("to stderr", file=sys.stderr)

    run(Pipeline(steps=[PythonTask(name="chatty", function=chatty)]))
    assert step_log("chatty") == "hello from the step\nto stderr\n"


def test_a_missing_argument_fails_the_step_naming_it(run: Run) -> None:
    def needs(epochs: int) -> None:
        return None

    with pytest.raises(ExecutionFailedError, match=r"needs: BindingError: argument 'epochs'"):
        run(Pipeline(steps=[PythonTask(name="needs", function=needs)]))


def test_on_failure_pipeline_ending_in_success_makes_the_run_succeed(
    run: Run, stored_run_log: Callable[..., Any]
) -> None:
    handled: list[str] = []

    def recover() -> None:
        handled.append("recovered")

    on_failure = Pipeline(steps=[PythonTask(name="recover", function=recover)])
    pipeline = Pipeline(
        steps=[
            PythonTask(name="risky", function=raise_value_error, on_failure=on_failure),
            Stub(name="skipped"),
        ]
    )
    run_log = run(pipeline)
    assert handled == ["recovered"]
    assert run_log.status == "SUCCESS"
    assert run_log.steps["risky"].status == "FAIL"
    assert run_log.steps["recover"].status == "SUCCESS"
    assert "skipped" not in run_log.steps
    assert stored_run_log().status == "SUCCESS"


def test_on_failure_pipeline_ending_in_failure_fails_the_run(
    run: Run, stored_run_log: Callable[..., Any]
) -> None:
    on_failure = Pipeline(steps=[Stub(name="notify", terminate_with_failure=True)])
    pipeline = Pipeline(
        steps=[
            PythonTask(name="risky", function=raise_value_error, on_failure=on_failure),
            Stub(name="skipped"),
        ]
    )
    with pytest.raises(ExecutionFailedError, match="risky: ValueError"):
        run(pipeline)
    run_log = stored_run_log()
    assert run_log.status == "FAIL"
    assert run_log.steps["notify"].status == "SUCCESS"
    assert "skipped" not in run_log.steps
    assert list(run_log.steps) == ["risky", "notify", "fail"]


def test_on_failure_is_not_taken_when_the_step_succeeds(run: Run) -> None:
    on_failure = Pipeline(steps=[Stub(name="notify")])
    pipeline = Pipeline(steps=[Stub(name="fine", on_failure=on_failure), Stub(name="next")])
    assert list(run(pipeline).steps) == ["fine", "next", "success"]


def test_terminate_with_success_and_failure(run: Run, stored_run_log: Callable[..., Any]) -> None:
    good = Pipeline(steps=[Stub(name="a"), Stub(name="b", terminate_with_success=True)])
    assert run(good, run_id="good").status == "SUCCESS"

    bad = Pipeline(steps=[Stub(name="a"), Stub(name="b", terminate_with_failure=True)])
    with pytest.raises(ExecutionFailedError):
        run(bad, run_id="bad")
    run_log = stored_run_log("bad")
    assert run_log.status == "FAIL"
    assert [s.status for s in run_log.steps.values()] == ["SUCCESS", "SUCCESS", "SUCCESS"]
    assert list(run_log.steps) == ["a", "b", "fail"]


def test_success_and_fail_terminal_steps(run: Run, stored_run_log: Callable[..., Any]) -> None:
    run_log = run(Pipeline(steps=[Stub(name="a"), Success(name="done")]), run_id="s")
    assert run_log.status == "SUCCESS"
    assert run_log.steps["done"].step_type == "success"

    with pytest.raises(ExecutionFailedError):
        run(Pipeline(steps=[Stub(name="a"), Fail(name="stop")]), run_id="f")
    failed = stored_run_log("f")
    assert failed.status == "FAIL"
    assert failed.steps["stop"].step_type == "fail"
    assert failed.steps["a"].status == "SUCCESS"


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param([Fail(name="stop")], id="named Fail"),
        pytest.param([Fail()], id="default Fail"),
    ],
)
def test_a_pipeline_that_is_only_a_fail_step_fails(
    run: Run, stored_run_log: Callable[..., Any], steps: list[Any]
) -> None:
    with pytest.raises(ExecutionFailedError):
        run(Pipeline(steps=steps))
    run_log = stored_run_log()
    assert run_log.status == "FAIL"
    assert list(run_log.steps) == [steps[0].name]
    assert run_log.steps[steps[0].name].step_type == "fail"


def test_a_system_exit_in_a_step_fails_only_that_step(run: Run) -> None:
    def leave() -> None:
        sys.exit(3)

    with pytest.raises(ExecutionFailedError, match=r"leave: SystemExit: 3"):
        run(Pipeline(steps=[PythonTask(name="leave", function=leave)]))


def test_parameters_pass_between_python_and_shell_steps(run: Run) -> None:
    seen: dict[str, Any] = {}

    def produce() -> tuple[int, list[int], str]:
        return 5, [1, 2], "hello world"

    def consume(doubled: int, echoed: str) -> None:
        seen.update(doubled=doubled, echoed=echoed)

    pipeline = Pipeline(
        steps=[
            PythonTask(name="produce", function=produce, returns=["number", "items", "text"]),
            ShellTask(
                name="shell",
                command='export doubled=$((number * 2)); export echoed="$text|$items"',
                returns=["doubled", "echoed"],
            ),
            PythonTask(name="consume", function=consume),
        ]
    )
    run_log = run(pipeline)
    assert seen == {"doubled": 10, "echoed": "hello world|[1, 2]"}
    inputs = run_log.steps["shell"].attempts[0].input_parameters
    assert {n: p.value for n, p in inputs.items()} == {
        "number": 5,
        "items": [1, 2],
        "text": "hello world",
    }


class Model:
    """Not JSON-serialisable: only a pickled() return can carry it."""

    def __init__(self, weights: list[float]) -> None:
        self.weights = weights


def test_pickled_values_reach_the_next_step_but_appear_in_the_run_log_by_name(
    run: Run, raw_run_log: Callable[..., dict[str, Any]]
) -> None:
    received: list[Model] = []

    def train() -> Model:
        return Model([0.123456789, 0.75])

    def evaluate(model: Model) -> None:
        received.append(model)

    pipeline = Pipeline(
        steps=[
            PythonTask(name="train", function=train, returns=[pickled("model")]),
            PythonTask(name="evaluate", function=evaluate),
        ]
    )
    run(pipeline)
    assert [m.weights for m in received] == [[0.123456789, 0.75]]
    document = raw_run_log()
    produced = document["steps"]["train"]["attempts"][0]["output_parameters"]["model"]
    assert produced == {"kind": "object", "value": "model", "description": ""}
    consumed = document["steps"]["evaluate"]["attempts"][0]["input_parameters"]["model"]
    assert consumed["value"] == "model"
    assert document["parameters"]["model"] == {
        "kind": "object",
        "value": "model",
        "description": "",
    }
    # a weight no timing or size in the log could spell by chance
    assert "0.123456789" not in json.dumps(document)


def test_metrics_are_recorded_in_user_defined_metrics(run: Run) -> None:
    def score() -> tuple[float, dict[str, float], str]:
        return 0.9, {"precision": 0.8}, "not a metric"

    task = PythonTask(
        name="score", function=score, returns=[metric("accuracy"), metric("report"), "note"]
    )
    attempt = run(Pipeline(steps=[task])).steps["score"].attempts[0]
    assert attempt.user_defined_metrics == {"accuracy": 0.9, "report": {"precision": 0.8}}
    assert attempt.output_parameters["accuracy"].kind == "metric"
    assert attempt.output_parameters["note"].kind == "json"


def test_run_id_from_the_argument(run: Run, stubs_only: Pipeline, workdir: Path) -> None:
    assert run(stubs_only, run_id="chosen").run_id == "chosen"
    assert (workdir / ".run_log_store" / "chosen.json").exists()


def test_run_id_from_the_environment(
    local_config: Path, stubs_only: Pipeline, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNABLE_RUN_ID", "from-env")
    run_log = stubs_only.execute(configuration_file=str(local_config))
    assert run_log.run_id == "from-env"
    assert (workdir / ".run_log_store" / "from-env.json").exists()


def test_the_argument_wins_over_the_environment(
    local_config: Path, stubs_only: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNABLE_RUN_ID", "from-env")
    assert stubs_only.execute(configuration_file=str(local_config), run_id="arg").run_id == "arg"


def test_generated_run_ids_are_readable_and_differ(
    local_config: Path, stubs_only: Pipeline, workdir: Path
) -> None:
    ids = [stubs_only.execute(configuration_file=str(local_config)).run_id for _ in range(3)]
    assert len(set(ids)) == 3
    for run_id in ids:
        assert re.fullmatch(r"[a-z]+-[a-z]+-\d{8}-\d{6}-[0-9a-f]{4}", run_id), run_id
        assert (workdir / ".run_log_store" / f"{run_id}.json").exists()


@pytest.mark.parametrize("run_id", ["../escape", "a/b", ".hidden"])
def test_a_run_id_that_cannot_name_a_file_is_refused(
    run: Run, stubs_only: Pipeline, workdir: Path, run_id: str
) -> None:
    with pytest.raises(ConfigurationError, match="cannot name a file"):
        run(stubs_only, run_id=run_id)
    assert not (workdir / ".run_log_store").exists()


def test_an_existing_run_log_is_never_overwritten(
    run: Run, stubs_only: Pipeline, linear: Pipeline, workdir: Path
) -> None:
    run(stubs_only, run_id="taken")
    path = workdir / ".run_log_store" / "taken.json"
    before = path.read_bytes()
    with pytest.raises(RunLogExistsError, match="'taken' succeeded already"):
        run(linear, run_id="taken")
    assert path.read_bytes() == before


def test_the_run_log_is_on_disk_while_the_run_goes_on(run: Run, workdir: Path) -> None:
    def watch() -> tuple[str, str]:
        store = RunLogStore(workdir / ".run_log_store")  # the document and its parts
        deadline = time.monotonic() + 10
        while True:
            document = json.loads(store.read_bytes("test-run"))
            first = document["steps"].get("first", {}).get("status")
            if first == "SUCCESS" or time.monotonic() > deadline:
                return document["status"], first or "absent"
            time.sleep(0.02)

    pipeline = Pipeline(
        steps=[
            Stub(name="first"),
            PythonTask(name="watch", function=watch, returns=["run_status", "first_status"]),
        ]
    )
    run_log = run(pipeline)
    assert run_log.parameters["run_status"].value == "PROCESSING"
    assert run_log.parameters["first_status"].value == "SUCCESS"
    assert run_log.status == "SUCCESS"


def test_attempts_record_times_parameters_and_number(run: Run, linear: Pipeline) -> None:
    run_log = run(linear)
    second = run_log.steps["second"]
    assert len(second.attempts) == 1
    attempt = second.attempts[0]
    assert attempt.attempt_number == 1
    assert attempt.start_time <= attempt.end_time
    assert attempt.input_parameters["count"].value == 1
    assert attempt.output_parameters["count"].value == 2
    assert run_log.steps["first"].attempts[0].end_time <= attempt.start_time


def test_a_step_runs_in_the_working_folder_and_sees_the_environment(
    run: Run, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOME_SETTING", "value")

    def where() -> tuple[str, str]:
        return os.getcwd(), os.environ["SOME_SETTING"]

    run_log = run(Pipeline(steps=[PythonTask(name="where", function=where, returns=["cwd", "s"])]))
    assert Path(run_log.parameters["cwd"].value).resolve() == workdir.resolve()
    assert run_log.parameters["s"].value == "value"


INTERRUPTED_SCRIPT = """
import time
from runnable_dask import Pipeline, PythonTask, Stub

def first():
    return 1

def long_step():
    time.sleep(60)

if __name__ == "__main__":
    Pipeline(
        steps=[
            PythonTask(name="first", function=first, returns=["count"]),
            PythonTask(name="long_step", function=long_step),
            Stub(name="after"),
        ]
    ).execute(configuration_file="local.yaml", run_id="interrupted")
"""


def test_an_interrupted_run_keeps_what_it_recorded(local_config: Path, workdir: Path) -> None:
    (workdir / "interrupted.py").write_text(INTERRUPTED_SCRIPT)
    log_file = workdir / ".run_log_store" / "interrupted.json"
    process = subprocess.Popen(
        [sys.executable, "interrupted.py"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    store = RunLogStore(workdir / ".run_log_store")
    while time.monotonic() < deadline:  # wait until the long step is recorded as running
        if log_file.exists() and "long_step" in store.read("interrupted").steps:
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)

    assert process.returncode != 0
    assert "KeyboardInterrupt" in output
    run_log = RunLogStore(workdir / ".run_log_store").read("interrupted")
    assert run_log.status == "FAIL"
    assert run_log.steps["first"].status == "SUCCESS"
    assert run_log.steps["first"].attempts[0].output_parameters["count"].value == 1
    assert run_log.steps["long_step"].status == "FAIL"
    assert run_log.steps["long_step"].message == "stopped while running: KeyboardInterrupt"
    assert "after" not in run_log.steps


DROPPED_INTERRUPT_SCRIPT = """
import gc, os, signal, threading, time
from runnable_dask import Pipeline, PythonTask

running = threading.Event()
sent = threading.Event()

def long_step():
    running.set()
    gc.set_threshold(1)  # collections from now on in every thread, the main one too
    time.sleep(60)

def interrupt_during_a_collection(phase, info):
    # SIGINT reaches the main thread while it runs a collection's callback (distributed's
    # GC diagnostics register one): Python drops the KeyboardInterrupt raised there.
    if phase == "start" and running.is_set() and not sent.is_set():
        if threading.current_thread() is threading.main_thread():
            sent.set()
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(100):  # the handler runs here, inside the callback
                pass

if __name__ == "__main__":
    gc.callbacks.append(interrupt_during_a_collection)
    Pipeline(steps=[PythonTask(name="long_step", function=long_step)]).execute(
        configuration_file="local.yaml", run_id="dropped"
    )
"""


def test_an_interrupt_python_dropped_still_stops_the_run(local_config: Path, workdir: Path) -> None:
    (workdir / "dropped.py").write_text(DROPPED_INTERRUPT_SCRIPT)
    process = subprocess.run(
        [sys.executable, "dropped.py"],
        check=False,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=40,  # the step sleeps 60 s: a run that missed the interrupt would finish it
    )

    assert "Exception ignored" in process.stdout  # Python dropped it inside the callback
    assert "interrupt_during_a_collection" in process.stdout
    assert process.returncode != 0
    assert "Interrupted: run dropped stopped" in process.stdout
    run_log = RunLogStore(workdir / ".run_log_store").read("dropped")
    assert run_log.status == "FAIL"
    assert run_log.steps["long_step"].message == "stopped while running: KeyboardInterrupt"


def test_a_programs_own_interrupt_handler_is_left_as_it_is(run: Run) -> None:
    def own_handler(signum: int, frame: Any) -> None:
        """What a program does on Ctrl-C, its own way."""

    def handler_during_the_run() -> str:
        return signal.getsignal(signal.SIGINT).__name__  # type: ignore[union-attr]

    step = PythonTask(name="look", function=handler_during_the_run, returns=["handler"])
    run(Pipeline(steps=[step]), run_id="python-handler")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Python's, back
    previous = signal.signal(signal.SIGINT, own_handler)
    try:
        own_run = run(Pipeline(steps=[step]), run_id="own-handler")
        assert signal.getsignal(signal.SIGINT) is own_handler
    finally:
        signal.signal(signal.SIGINT, previous)

    assert own_run.parameters["handler"].value == "own_handler"
