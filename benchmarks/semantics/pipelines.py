"""Pipelines from the semantics page, written once for both libraries.

``SEMANTICS_LIBRARY=runnable python pipelines.py <case> [parameters.yaml]`` builds and
runs one case with ``runnable`` or ``runnable_dask`` (the default; the only difference is
the import), inside a top-level function as runnable requires. ``compare.py`` runs
every case with both and compares the outcomes.
"""

from __future__ import annotations

import importlib
import os
import sys

sd = importlib.import_module(os.environ.get("SEMANTICS_LIBRARY", "runnable_dask"))


def first() -> int:
    return 1


def add_one(count: int) -> int:
    return count + 1


def fail() -> None:
    raise ValueError("bad input")


def branch_value(label: str = "none") -> str:
    return "from-branch"


def scale(x: int, factor: float) -> float:
    return x * factor


def chain():
    return sd.Pipeline(
        steps=[
            sd.PythonTask(name="first", function=first, returns=["count"]),
            sd.PythonTask(name="second", function=add_one, returns=["count"]),
            sd.ShellTask(
                name="shell", command="export doubled=$((count * 2))", returns=["doubled"]
            ),
            sd.Stub(name="done"),
        ]
    )


def default_fail():
    return sd.Pipeline(
        steps=[
            sd.PythonTask(name="first", function=first, returns=["count"]),
            sd.PythonTask(name="broken", function=fail),
            sd.PythonTask(name="never", function=add_one, returns=["count"]),
        ]
    )


def on_failure_succeed():
    recovery = sd.Pipeline(
        steps=[sd.PythonTask(name="recover", function=first, returns=["recovered"])]
    )
    return sd.Pipeline(
        steps=[
            sd.PythonTask(name="broken", function=fail, on_failure=recovery),
            sd.Stub(name="never"),
        ]
    )


def on_failure_fail():
    recovery = sd.Pipeline(steps=[sd.Stub(name="report", terminate_with_failure=True)])
    return sd.Pipeline(
        steps=[
            sd.PythonTask(name="broken", function=fail, on_failure=recovery),
            sd.Stub(name="never"),
        ]
    )


def parallel_merge():
    def branch(name: str):
        return sd.Pipeline(
            steps=[sd.PythonTask(name="work", function=branch_value, returns=[name])]
        )

    return sd.Pipeline(
        steps=[
            sd.Parallel(name="fan", branches={"a": branch("a_out"), "b": branch("b_out")}),
            sd.Stub(name="after"),
        ]
    )


def parallel_one_fails():
    good = sd.Pipeline(steps=[sd.PythonTask(name="work", function=first, returns=["ok"])])
    bad = sd.Pipeline(steps=[sd.PythonTask(name="work", function=fail)])
    return sd.Pipeline(
        steps=[sd.Parallel(name="fan", branches={"good": good, "bad": bad}), sd.Stub(name="after")]
    )


def parameters_file():
    return sd.Pipeline(steps=[sd.PythonTask(name="scale", function=scale, returns=["scaled"])])


def terminate_with_failure():
    return sd.Pipeline(
        steps=[
            sd.PythonTask(name="first", function=first, returns=["count"]),
            sd.Stub(name="stop", terminate_with_failure=True),
        ]
    )


CASES = {
    name: globals()[name]
    for name in (
        "chain",
        "default_fail",
        "on_failure_succeed",
        "on_failure_fail",
        "parallel_merge",
        "parallel_one_fails",
        "parameters_file",
        "terminate_with_failure",
    )
}


def main():
    case = sys.argv[1]
    parameters = sys.argv[2] if len(sys.argv) > 2 else ""
    pipeline = CASES[case]()
    pipeline.execute(parameters_file=parameters)
    return pipeline  # runnable re-imports this module and calls main() for the pipeline


if __name__ == "__main__":
    main()
