"""Run logs kept at an fsspec URL, not a local folder: ``memory://`` here (the same code
path as ``s3://``: nothing but fsspec touches the store). Execute, retry, runs and show
all go through it, and nothing is written to a local run-log folder."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import fsspec
import pytest
from click.testing import Result

from runnable_dask.exceptions import RunInUseError
from runnable_dask.stores.runlog_store import RunLogStore

Invoke = Callable[..., Result]


@pytest.fixture
def memory_store(workdir: Path) -> Iterator[str]:
    """A configuration keeping run logs at a fresh memory:// folder; its URL."""
    url = f"memory://run-logs-{uuid.uuid4().hex[:8]}"
    (workdir / "memory.yaml").write_text(
        "pipeline-executor: {type: local}\n"
        f"run-log-store: {{type: file-system, config: {{log_folder: '{url}'}}}}\n",
        encoding="utf-8",
    )
    yield url
    fsspec.filesystem("memory").rm(url.removeprefix("memory://"), recursive=True)


def test_execute_retry_runs_and_show_on_a_memory_store(
    invoke: Invoke, flow: Path, workdir: Path, memory_store: str
) -> None:
    first = invoke("execute", "flow.py:retryable", "-c", "memory.yaml", "--run-id", "remote")
    assert first.exit_code == 1
    store = RunLogStore(memory_store)
    assert store.read("remote").status == "FAIL"
    assert f"{memory_store}/remote.json" in first.output

    (workdir / "fixed").touch()
    retried = invoke("retry", "remote", "-c", "memory.yaml")
    assert retried.exit_code == 0, retried.output
    run_log = store.read("remote")
    assert run_log.status == "SUCCESS"
    assert [a.status for a in run_log.step("flaky").attempts] == ["FAIL", "SUCCESS"]

    listed = invoke("runs", "-c", "memory.yaml")
    assert listed.exit_code == 0, listed.output
    assert f"Runs in {memory_store}" in listed.output
    assert "remote" in listed.output and "SUCCESS" in listed.output

    shown = invoke("show", "remote", "-c", "memory.yaml")
    assert shown.exit_code == 0, shown.output
    assert "flaky" in shown.output and "2 attempts" in shown.output
    assert f"Run log:   {memory_store}/remote.json" in shown.output

    assert not (workdir / ".run_log_store").exists()


def test_an_unknown_run_on_a_memory_store_names_the_store(
    invoke: Invoke, flow: Path, memory_store: str
) -> None:
    assert (
        invoke("execute", "flow.py:passing", "-c", "memory.yaml", "--run-id", "one").exit_code == 0
    )
    result = invoke("show", "ghost", "-c", "memory.yaml")
    assert result.exit_code == 2
    assert f"no run 'ghost' in {memory_store}; recent runs: one" in result.stderr


def test_a_second_driver_of_a_run_on_a_memory_store_is_refused(memory_store: str) -> None:
    first, second = RunLogStore(memory_store), RunLogStore(memory_store)
    first.lock("busy")
    with pytest.raises(RunInUseError, match=r"run 'busy' is being driven by another process"):
        second.lock("busy")
    first.release("busy")
    second.lock("busy")  # free once the first driver is done
    second.release("busy")
