"""Each step's output is captured apart, even when steps print from threads at once."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runnable_dask import Parallel, Pipeline, PythonTask
from runnable_dask.runtime.capture import capture_output


def test_two_threads_capturing_at_once_do_not_mix() -> None:
    barrier = threading.Barrier(2, timeout=10)
    captured: dict[str, str] = {}
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            with capture_output() as buffer:
                for line in range(50):
                    barrier.wait()  # both threads write each line at the same moment
                    print(f"{name} {line}")
                    sys.stderr.write(f"{name} err {line}\n")
                logging.getLogger("user.code").warning("%s logged", name)
            captured[name] = buffer.getvalue()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for name in ("left", "right"):
        lines = captured[name].splitlines()
        expected = [x for i in range(50) for x in (f"{name} {i}", f"{name} err {i}")]
        assert lines == [*expected, f"WARNING user.code: {name} logged"]


def test_nested_capture_restores_the_outer_buffer() -> None:
    with capture_output() as outer:
        print("outer before")
        with capture_output() as inner:
            print("inner")
        print("outer after")
    assert inner.getvalue() == "inner\n"
    assert outer.getvalue() == "outer before\nouter after\n"


def test_output_outside_a_capture_is_not_captured() -> None:
    with capture_output() as buffer:
        print("inside")
    print("outside")
    assert buffer.getvalue() == "inside\n"


def test_parallel_branches_each_get_their_own_log(
    run: Callable[..., Any], workdir: Path, step_log: Callable[..., str]
) -> None:
    barrier = threading.Barrier(3, timeout=10)

    def make(key: str) -> Pipeline:
        def chatty() -> None:
            for line in range(20):
                barrier.wait()
                print(f"{key}:{line}")

        return Pipeline(steps=[PythonTask(name="chatty", function=chatty)])

    run(Pipeline(steps=[Parallel(name="fan", branches={k: make(k) for k in "abc"})]))
    for key in "abc":
        assert step_log(f"fan.{key}.chatty") == "".join(f"{key}:{i}\n" for i in range(20))


def _noisy(tag: str) -> None:
    """What libraries do with sys.stdout, and children that write to the console."""
    print(f"{tag} text")
    sys.stdout.buffer.write(f"{tag} bytes\n".encode())
    subprocess.run(["echo", f"{tag} child given sys.stdout"], stdout=sys.stdout, check=True)
    subprocess.run(["sh", "-c", f"echo {tag} child stderr >&2"], stderr=sys.stderr, check=True)
    assert os.system(f"echo {tag} os.system") == 0
    assert os.system("exit 3") == 3 << 8  # the same wait status as plain Python
    subprocess.run(f"echo {tag} inherited", shell=True, check=True)
    print(f"{tag} last")


def _expected(tag: str) -> str:
    lines = ["text", "bytes", "child given sys.stdout", "child stderr", "os.system"]
    return "".join(f"{tag} {line}\n" for line in [*lines, "inherited", "last"])


def test_a_step_writes_as_to_a_real_stream_and_its_children_land_in_its_log(
    run: Callable[..., Any], step_log: Callable[..., str], capfd: pytest.CaptureFixture[str]
) -> None:
    run(Pipeline(steps=[PythonTask(name="noisy", function=lambda: _noisy("solo"))]))
    assert step_log("noisy") == _expected("solo")
    out, err = capfd.readouterr()
    assert "solo" not in out + err  # nothing reached the console


def test_children_of_steps_running_at_once_land_in_their_own_logs(
    run: Callable[..., Any], step_log: Callable[..., str]
) -> None:
    barrier = threading.Barrier(3, timeout=10)

    def branch(key: str) -> Pipeline:
        def noisy() -> None:
            barrier.wait()  # all three print and start children at the same moment
            for _ in range(3):
                _noisy(key)

        return Pipeline(steps=[PythonTask(name="noisy", function=noisy)])

    run(Pipeline(steps=[Parallel(name="fan", branches={k: branch(k) for k in "abc"})]))
    for key in "abc":
        assert step_log(f"fan.{key}.noisy") == _expected(key) * 3


def test_outside_a_step_the_streams_are_the_process_s_own() -> None:
    with capture_output():
        pass  # routers installed
    own = sys.stdout.original.fileno()  # type: ignore[attr-defined]  # the routed stream
    assert sys.stdout.fileno() == own
    with capture_output() as output:
        descriptor = sys.stdout.fileno()
        assert descriptor != own
        os.write(descriptor, b"raw\n")
        sys.stdout.buffer.write(b"\xff\n")  # not UTF-8: kept as written
    assert output.getbytes() == b"raw\n\xff\n"
    output.close()
