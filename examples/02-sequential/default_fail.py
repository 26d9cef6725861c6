"""A failing step fails the pipeline; the steps after it never run.

``step 2`` raises an exception. It has no ``on_failure`` pipeline, so the pipeline goes to
its ``fail`` node and ``step 3`` is never reached.

Run it from the repository root:

    python examples/02-sequential/default_fail.py

Outcome: fails (exit code 1, ExecutionFailedError). ``step 1`` is SUCCESS, ``step 2`` is
FAIL (its message names the RuntimeError), ``fail`` is SUCCESS and the run is FAIL;
``step 3`` has no record in the run log because it never ran.
"""

from runnable_dask import Pipeline, PythonTask, Stub


def main():
    from examples.common.functions import raise_ex

    step1 = Stub(name="step 1")
    step2 = PythonTask(name="step 2", function=raise_ex)  # raises RuntimeError
    step3 = Stub(name="step 3")  # never runs

    pipeline = Pipeline(steps=[step1, step2, step3])
    pipeline.execute()
    return pipeline


if __name__ == "__main__":
    main()
