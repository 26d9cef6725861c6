"""The environment tasks see while they run, and what the process keeps after a run."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from runnable_dask import Loop, Parallel, Pipeline, PythonTask
from runnable_dask.runtime.attempt import task_environment


def test_overlapping_tasks_leave_the_environment_as_it_was(local_config: Path) -> None:
    seen: list[str] = []

    def overlap() -> None:
        time.sleep(0.2)  # the branches' tasks run at the same time
        seen.append(os.environ["RUNNABLE_RUN_ID"])

    counted = Pipeline(steps=[PythonTask(name="count", function=overlap)])
    branch = Pipeline(
        steps=[
            Loop(name="rounds", branch=counted, max_iterations=2, break_on="stop", index_as="rnd")
        ]
    )
    pipeline = Pipeline(
        steps=[Parallel(name="fan", branches=dict.fromkeys(("a", "b", "c"), branch))]
    )
    first = pipeline.execute(configuration_file=str(local_config))
    assert first.status == "SUCCESS"
    assert seen == [first.run_id] * 6
    assert "RUNNABLE_RUN_ID" not in os.environ
    assert "rnd" not in os.environ
    second = pipeline.execute(configuration_file=str(local_config))
    assert second.run_id != first.run_id  # a leaked run id would have been reused


def test_a_name_is_restored_when_the_last_task_setting_it_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHARED", "before")
    first_in = threading.Event()
    second_in = threading.Event()
    first_out = threading.Event()
    during: list[str | None] = []

    def first() -> None:
        with task_environment({"SHARED": "a"}):
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with task_environment({"SHARED": "a"}):
            second_in.set()
            first_out.wait(5)
            during.append(os.environ.get("SHARED"))

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert during == ["a"]  # the first task's end did not take it from the second
    assert os.environ["SHARED"] == "before"
