"""What a worker's checkpoint journal costs a step, alone: four threads each look a step
up (a miss, as on a fresh run) and then keep it, like the pool threads of a worker, while
a child process keeps steps all along (the other worker). Prints CPU and wall time per
step. Run it with ``PYTHONPATH`` pointing at another checkout to compare, in turns.

    python benchmarks/journal_cost.py [--steps 5000] [--work-us 0]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time

from runnable_dask.runtime import worker_journal

OTHER_WORKER = """
import os, sys, time
from runnable_dask.runtime import worker_journal

journals = worker_journal.of(sys.argv[1])
i = 0
while not os.path.exists(sys.argv[2]):
    journals.append(f"other-{i}", b"o" * 600)
    i += 1
    time.sleep(0.0005)
"""


def spin(microseconds: float) -> None:
    """Python work between a look and a keep, holding the interpreter like a step."""
    end = time.perf_counter() + microseconds / 1e6
    while time.perf_counter() < end:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000, help="per thread")
    parser.add_argument("--work-us", type=float, default=0.0, help="a step's own work")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder, stop = f"{scratch}/workers", f"{scratch}/stop"
        other = subprocess.Popen([sys.executable, "-c", OTHER_WORKER, folder, stop])
        journals = worker_journal.of(folder)
        while journals.find("other-0") is None:
            time.sleep(0.01)

        def steps(thread: int) -> None:
            for i in range(args.steps):
                name = f"t{thread}-{i}"
                if journals.find(name) is not None:
                    raise AssertionError(f"{name} found before it was kept")
                spin(args.work_us)
                journals.append(name, b"x" * 600)

        threads = [threading.Thread(target=steps, args=(t,)) for t in range(4)]
        before, started = os.times(), time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall, after = time.perf_counter() - started, os.times()
        open(stop, "w").close()
        other.wait()
    cpu = after.user - before.user + after.system - before.system
    count = 4 * args.steps
    print(
        f"{worker_journal.__file__}: {count} steps, {cpu / count * 1e6:.1f} us CPU and "
        f"{wall / count * 1e6:.1f} us wall a step; load {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
