"""What a ``timeout`` costs a Python step: it runs in a child interpreter so that it can
be killed. A chain of trivial steps with and without a timeout, timed in turn on the
``local`` executor (best of ``--repeat``), and the cost per step.

    python benchmarks/timeout_cost.py [--steps 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import uuid

from benchmarks.timing import best_of
from runnable_dask import Pipeline, PythonTask


def trivial(count: int = 0) -> int:
    return count + 1


def chain(steps: int, timeout: float | None) -> Pipeline:
    return Pipeline(
        steps=[
            PythonTask(name=f"step{i}", function=trivial, returns=["count"], timeout=timeout)
            for i in range(steps)
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="runnable-dask-timeout-")
    os.chdir(folder)
    with open("local.yaml", "w", encoding="utf-8") as handle:
        handle.write("pipeline-executor:\n  type: local\n")
    plain, limited = chain(args.steps, None), chain(args.steps, 60)

    def run(pipeline: Pipeline) -> None:
        pipeline.execute(configuration_file="local.yaml", run_id=uuid.uuid4().hex)

    best = best_of(args.repeat, {"no timeout": lambda: run(plain), "timeout": lambda: run(limited)})
    extra = (best["timeout"] - best["no timeout"]) / args.steps
    print(f"{args.steps} steps in a row, local executor, best of {args.repeat}:")
    for name, seconds in best.items():
        print(f"  {name:<10} {seconds:.3f} s")
    print(f"  ratio {best['timeout'] / best['no timeout']:.1f}x, {extra * 1000:.0f} ms a step")


if __name__ == "__main__":
    main()
