"""Each step's output is captured apart, even when steps print from threads at once."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
