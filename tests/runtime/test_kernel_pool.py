"""The pool of warm kernels on its own: real kernels, started, lent, given back, ended."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from runnable_dask.runtime.kernel_pool import (
    Kernel,
    KernelKey,
    KernelPool,
    close_pool,
    process_folder,
)

PYTHON = KernelKey("python3")


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie has exited: only its exit status is left)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kernel_children() -> set[int]:
    """Kernels this process started (they are its children)."""
    found = set()
    for child in psutil.Process().children():
        try:
            if "ipykernel_launcher" in " ".join(child.cmdline()) and alive(child.pid):
                found.add(child.pid)
        except psutil.NoSuchProcess:
            continue
    return found


def run_code(kernel: Kernel, code: str) -> dict[str, Any]:
    """Run ``code`` in the kernel; the values of ``expressions`` it names come back."""

    async def execute() -> dict[str, Any]:
        client = kernel.manager.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=30)
            reply = await client.execute(
                code,
                user_expressions={"result": "result"},
                reply=True,
                timeout=30,
            )
        finally:
            client.stop_channels()
        return dict(reply["content"]["user_expressions"]["result"])

    return asyncio.run(execute())


def prepared(pool: KernelPool) -> set[int]:
    """Prepare a python3 kernel and wait until its process exists (it has its
    environment then); its pid."""
    before = kernel_children()
    pool.prepare([PYTHON])
    deadline = time.monotonic() + 60
    while not (kernel_children() - before):
        assert time.monotonic() < deadline, "no kernel started"
        time.sleep(0.05)
    return kernel_children() - before


@pytest.fixture
def pool() -> Iterator[KernelPool]:
    before = kernel_children()
    pool = KernelPool()
    try:
        yield pool
    finally:
        pool.close()
    assert kernel_children() <= before, "the pool left a kernel running"


@pytest.mark.timeout(120)
def test_a_prepared_kernel_is_taken_warm_and_the_next_one_starts(
    pool: KernelPool, tmp_path: Path
) -> None:
    ready = prepared(pool)
    kernel = pool.take(PYTHON, str(tmp_path))

    assert kernel.warm
    assert kernel.pid in ready, "the step got the kernel started before it asked"
    assert pool.taken_warm == 1
    assert pool.started == 2, "taking the idle kernel starts the next one"
    shown = run_code(kernel, "import os\nresult = os.getcwd()")
    assert shown["data"]["text/plain"] == repr(str(tmp_path))

    process = psutil.Process(kernel.pid)  # held now: the kernel may be gone before we look
    pool.give_back(kernel)
    process.wait(timeout=10)  # shut down once its notebook ran
    assert not alive(kernel.pid)


@pytest.mark.timeout(120)
def test_without_a_prepared_kernel_one_is_started_for_the_step(
    pool: KernelPool, tmp_path: Path
) -> None:
    kernel = pool.take(PYTHON, str(tmp_path))
    assert not kernel.warm
    assert pool.taken_warm == 0
    pool.give_back(kernel)
    second = pool.take(PYTHON, str(tmp_path))  # the one started when the first was taken
    assert second.warm
    assert second.pid != kernel.pid
    pool.give_back(second)


@pytest.mark.timeout(120)
def test_a_taken_kernel_has_the_environment_of_now(
    pool: KernelPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RD_TEST_GONE", "set when the kernel started")
    prepared(pool)
    monkeypatch.setenv("RD_TEST_NEW", "set after")
    monkeypatch.delenv("RD_TEST_GONE")
    kernel = pool.take(PYTHON, str(tmp_path))
    assert kernel.warm
    shown = run_code(
        kernel, "import os\nresult = (os.environ.get('RD_TEST_NEW'), 'RD_TEST_GONE' in os.environ)"
    )
    assert shown["data"]["text/plain"] == "('set after', False)"
    pool.give_back(kernel)


@pytest.mark.timeout(120)
def test_a_start_only_variable_that_changed_gets_a_kernel_of_its_own(
    pool: KernelPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepared(pool)
    monkeypatch.setenv("PYTHONHASHSEED", "7")  # read only when the interpreter starts
    kernel = pool.take(PYTHON, str(tmp_path))
    assert not kernel.warm
    shown = run_code(kernel, "import sys\nresult = sys.flags.hash_randomization")
    assert shown["data"]["text/plain"] == "1"
    pool.give_back(kernel)


@pytest.mark.timeout(120)
def test_stop_ends_a_running_tasks_kernel_and_what_it_started(
    pool: KernelPool, tmp_path: Path
) -> None:
    kernel = pool.take(PYTHON, str(tmp_path), owner="notebook-step-1")
    shown = run_code(kernel, "import subprocess\nresult = subprocess.Popen(['sleep', '60']).pid")
    sleeper = int(shown["data"]["text/plain"])
    assert alive(sleeper)

    pool.stop("some-other-task")
    assert alive(kernel.pid)
    process = psutil.Process(kernel.pid)  # held now: the kernel may be gone before we look
    pool.stop("notebook-step-1")
    process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while alive(sleeper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(sleeper), "the kernel's own child process outlived it"
    pool.give_back(kernel)


@pytest.mark.timeout(120)
def test_close_ends_idle_and_lent_kernels(tmp_path: Path) -> None:
    pool = KernelPool()
    pool.prepare([PYTHON])
    lent = pool.take(PYTHON, str(tmp_path))
    pids = {lent.pid} | kernel_children()
    assert len(pids) >= 2  # the lent one and the one started to replace it

    pool.close()
    assert not any(alive(pid) for pid in pids)
    assert not os.path.exists(lent.folder), "its sockets and connection file are removed"
    with pytest.raises(RuntimeError, match="closed"):
        pool.take(PYTHON, str(tmp_path))


@pytest.mark.timeout(120)
def test_a_kernel_launched_for_a_starting_worker_is_ended_by_close_while_it_starts() -> None:
    before = kernel_children()
    pool = KernelPool()
    pool.prepare([PYTHON], launched=True)  # as a worker's preload: returns once it exists
    started = kernel_children() - before
    assert len(started) == 1, "prepare(launched=True) returned before the kernel's process"

    pool.close()  # while it starts: stopped there, not first waited for until it answers
    assert not any(alive(pid) for pid in started)
    assert not os.listdir(pool._folder), "its sockets and connection file are removed"


@pytest.mark.timeout(60)
def test_a_pool_removes_what_a_killed_process_left_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    left = tmp_path / f"runnable-dask-kernels-{int(ended.stdout)}"
    (left / "k-1").mkdir(parents=True)
    (left / "k-1" / "connection.json").write_text("{}")
    running = tmp_path / f"runnable-dask-kernels-{os.getppid()}"
    running.mkdir()

    own = process_folder()  # as when the first notebook step or pool of a process starts
    assert not left.exists(), "the folder of a process that no longer runs is removed"
    assert running.exists(), "a running process's folder is left alone"
    assert Path(own) == tmp_path / f"runnable-dask-kernels-{os.getpid()}"
    close_pool()
    assert not Path(own).exists()


@pytest.mark.timeout(45)  # under START_TIMEOUT: the step must not wait on the dead kernel
def test_an_idle_kernel_that_died_is_replaced_for_the_step(
    pool: KernelPool, tmp_path: Path
) -> None:
    (idle,) = prepared(pool)
    time.sleep(0.5)  # let it finish starting
    psutil.Process(idle).kill()  # as the OOM killer would
    kernel = pool.take(PYTHON, str(tmp_path))
    assert not kernel.warm
    assert kernel.pid != idle
    shown = run_code(kernel, "result = 6 * 7")
    assert shown["data"]["text/plain"] == "42"
    pool.give_back(kernel)
