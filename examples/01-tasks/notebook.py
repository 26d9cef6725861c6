"""A pipeline of one Jupyter notebook.

A NotebookTask executes examples/common/simple_notebook.ipynb with papermill; the
executed copy, with its outputs, is kept in the run's catalog.

Run it from the repository root:

    python examples/01-tasks/notebook.py

Outcome: succeeds. The step ``notebook`` is SUCCESS and the executed notebook is
.catalog/<run_id>/simple_notebook-notebook_out.ipynb.
"""

from runnable_dask import NotebookTask, Pipeline


def main():
    # The path is relative to the folder the pipeline runs from (the repository root).
    notebook_task = NotebookTask(name="notebook", notebook="examples/common/simple_notebook.ipynb")

    pipeline = Pipeline(steps=[notebook_task])
    pipeline.execute()
    return pipeline


if __name__ == "__main__":
    main()
