"""Events from tasks on a worker: they ride the task's completion to the scheduler, and
still reach the driver while a long task goes on running."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from runnable_dask.executors.dask_events import TopicReporter, put_message
from runnable_dask.runtime.events import StepStarted


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=True, dashboard_address="127.0.0.1:0"
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _received(client: Client, topic: str) -> queue.SimpleQueue:
    """The topic's messages, put on a queue as the driver puts them (unpacked later)."""
    got: queue.SimpleQueue = queue.SimpleQueue()
    client.subscribe_topic(topic, lambda message: put_message(got, message[1]))
    return got


def _started(name: str) -> StepStarted:
    return StepStarted(name, name, (), name, "task", "2026-01-01T00:00:00")


def _report_then_wait(topic: str, release: Path) -> str:
    TopicReporter(topic)([_started("first")])
    while not release.exists():  # sends nothing to the scheduler meanwhile
        time.sleep(0.01)
    return "done"


def test_an_event_reaches_the_driver_while_its_task_still_runs(
    client: Client, tmp_path: Path
) -> None:
    got = _received(client, "long-task")
    release = tmp_path / "release"
    future = client.submit(_report_then_wait, "long-task", release, pure=False)

    assert got.get(timeout=30).events() == [_started("first")]
    assert not future.done()
    release.touch()
    assert future.result(timeout=30) == "done"


def _report_each(topic: str, count: int) -> int:
    report = TopicReporter(topic)
    for index in range(count):
        report([_started(f"s{index}")])
    return count


def test_events_of_quick_tasks_all_arrive_in_order(client: Client) -> None:
    got = _received(client, "quick-tasks")
    assert client.submit(_report_each, "quick-tasks", 50, pure=False).result() == 50

    names = [got.get(timeout=30).events()[0].internal_name for _ in range(50)]
    assert names == [f"s{index}" for index in range(50)]
