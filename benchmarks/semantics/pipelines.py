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


def square(item: int) -> int:
    return item * item


def letters() -> list[str]:
    return ["a", "b", "c"]


def code_of(letter: str) -> int:
    return ord(letter)


def fail_on_two(item: int) -> int:
    if item == 2:
        raise ValueError("item 2 is bad")
    return item


def toss() -> tuple[str, int]:
    return "heads", 5


def heads() -> tuple[int, str]:
    return 1, "H"


def count(counter: int = 0) -> tuple[int, bool]:
    """One loop iteration: the index comes from the environment, as runnable sets it."""
    index = int(os.environ["IDX"])
    return counter + 1, index >= 2


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


def map_parameters_file():
    branch = sd.Pipeline(steps=[sd.PythonTask(name="train", function=square, returns=["sq"])])
    return sd.Pipeline(
        steps=[
            sd.Map(name="sweep", branch=branch, iterate_on="items", iterate_as="item"),
            sd.Stub(name="after"),
        ]
    )


def map_returned_list():
    branch = sd.Pipeline(steps=[sd.PythonTask(name="train", function=code_of, returns=["code"])])
    return sd.Pipeline(
        steps=[
            sd.PythonTask(name="make", function=letters, returns=["letters"]),
            sd.Map(
                name="sweep",
                branch=branch,
                iterate_on="letters",
                iterate_as="letter",
                reducer="lambda *x: max(x)",
            ),
            sd.Stub(name="after"),
        ]
    )


def map_one_fails():
    branch = sd.Pipeline(
        steps=[sd.PythonTask(name="train", function=fail_on_two, returns=["kept"])]
    )
    return sd.Pipeline(
        steps=[
            sd.Map(name="sweep", branch=branch, iterate_on="items", iterate_as="item"),
            sd.Stub(name="after"),
        ]
    )


def conditional_merge():
    # runnable 0.50 wants alphanumeric branch keys and parameter names
    branches = {
        "heads": sd.Pipeline(
            steps=[sd.PythonTask(name="h", function=heads, returns=["keep", "label"])]
        ),
        "tails": sd.Pipeline(steps=[sd.PythonTask(name="t", function=fail)]),
    }
    return sd.Pipeline(
        steps=[
            sd.PythonTask(name="toss", function=toss, returns=["side", "keep"]),
            sd.Conditional(name="cond", parameter="side", branches=branches),
            sd.Stub(name="after"),
        ]
    )


def conditional_fails():
    branches = {
        "heads": sd.Pipeline(steps=[sd.PythonTask(name="h", function=fail)]),
        "tails": sd.Pipeline(steps=[sd.PythonTask(name="t", function=heads, returns=["keep"])]),
    }
    return sd.Pipeline(
        steps=[
            sd.PythonTask(name="toss", function=toss, returns=["side", "keep"]),
            sd.Conditional(name="cond", parameter="side", branches=branches),
            sd.Stub(name="after"),
        ]
    )


def _loop(max_iterations: int):
    branch = sd.Pipeline(
        steps=[sd.PythonTask(name="count", function=count, returns=["counter", "done"])]
    )
    return sd.Pipeline(
        steps=[
            sd.Loop(
                name="loop",
                branch=branch,
                max_iterations=max_iterations,
                break_on="done",
                index_as="IDX",
            ),
            sd.Stub(name="after"),
        ]
    )


def loop_break():
    return _loop(max_iterations=5)  # done turns true at index 2: three iterations


def loop_max_iterations():
    return _loop(max_iterations=2)  # stops before done turns true


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
        "map_parameters_file",
        "map_returned_list",
        "map_one_fails",
        "conditional_merge",
        "conditional_fails",
        "loop_break",
        "loop_max_iterations",
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
