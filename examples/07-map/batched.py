"""A Map of a thousand short items, a hundred per Dask task (``batch_size=100``).

``list files`` returns 1,000 file names; the Map ``count`` runs its one step,
``lines``, once per name, with the name bound to ``file``. Each Dask task runs a batch of
100 items one after another, so the cluster schedules 10 tasks instead of 1,000; each
item still has its own branch in the run log (``count.part-0000.csv``, ...), its own
attempts and its own checkpoint, and a resumed run runs only the items that failed.

Run it from the repository root:

    python examples/07-map/batched.py

Outcome: succeeds (exit code 0). ``count`` (step_type "map") is SUCCESS with 1,000
branches, each SUCCESS with steps ``count.<file>.lines`` and ``count.<file>.success``;
then ``success``. Final parameters: files (the 1,000 names) and line_count=2997, the
sum over the items.
"""

from runnable_dask import Map, Pipeline, PythonTask


def main():
    from examples.common.functions import count_lines, list_files

    listing = PythonTask(name="list files", function=list_files, returns=["files"])
    lines = PythonTask(name="lines", function=count_lines, returns=["line_count"])
    count = Map(
        name="count",
        branch=Pipeline(steps=[lines]),
        iterate_on="files",
        iterate_as="file",
        reducer="lambda *counts: sum(counts)",
        batch_size=100,  # items per Dask task: for many short items
    )
    pipeline = Pipeline(steps=[listing, count])
    pipeline.execute()
    return pipeline


if __name__ == "__main__":
    main()
