"""One workload under runnable 0.50.0, in runnable's interpreter: prints the seconds of
``execute()`` as the last line of its output.

bench.py runs ``python benchmarks/runnable_child.py`` from a scratch folder holding a copy
of this package, with ``BENCH_KIND``, ``BENCH_N``, ``BENCH_PARAMETERS`` and
``RUNNABLE_CONFIGURATION_FILE`` set. runnable names a pipeline by the file and function
that called ``execute()``, relative to the working folder, and may call ``main()`` again
in a process of its own to read the pipeline's definition (``execute()`` then returns at
once): hence the copy, and a ``main()`` that takes no arguments and returns the pipeline.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import runnable

from benchmarks.workloads import Workload

SECONDS: list[float] = []


def main() -> Any:
    workload = Workload(os.environ["BENCH_KIND"], int(os.environ["BENCH_N"]))
    pipeline = workload.pipeline(runnable)
    began = time.perf_counter()
    pipeline.execute(parameters_file=os.environ.get("BENCH_PARAMETERS", ""))
    SECONDS.append(time.perf_counter() - began)
    return pipeline


if __name__ == "__main__":
    main()
    print(json.dumps({"seconds": SECONDS[0]}))
