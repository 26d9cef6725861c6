"""A pipeline of one Python function.

The function ``hello`` from examples/common/functions.py runs as a PythonTask; what it
prints is kept in the catalog as the step's log.

Run it from the repository root:

    python examples/01-tasks/python_tasks.py

Outcome: succeeds. The run log (.run_log_store/<run_id>.json) shows the step
``hello`` and the pipeline's ``success`` node as SUCCESS, and the catalog
(.catalog/<run_id>/logs/hello.execution.log) holds "Hello World!".
"""

from runnable_dask import Pipeline, PythonTask


def main():
    # Imported here, after runnable_dask has made the working folder importable.
    from examples.common.functions import hello

    # The last step of a pipeline ends it with success.
    hello_task = PythonTask(name="hello", function=hello)

    pipeline = Pipeline(steps=[hello_task])
    pipeline.execute()
    return pipeline


if __name__ == "__main__":
    main()
