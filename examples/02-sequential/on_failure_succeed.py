"""A failing step hands over to its on_failure pipeline, which ends in success.

``step 1`` raises, and its ``on_failure`` pipeline recovers: a shell step (a fallback)
and a stub that ends with ``terminate_with_success``. The run counts as a success even
though one step failed. ``step 2`` and ``step 3`` are never reached.

Run it from the repository root:

    python examples/02-sequential/on_failure_succeed.py

Outcome: succeeds (exit code 0). ``step 1`` is FAIL; ``step 4`` and ``step 5`` (the
on_failure pipeline) are SUCCESS; ``success`` ends the run with SUCCESS; ``step 2`` and
``step 3`` never run.
"""

from runnable_dask import Pipeline, PythonTask, ShellTask, Stub


def main():
    from examples.common.functions import raise_ex

    # A fallback that recovers from step 1's failure; the run then ends with success.
    step4 = ShellTask(name="step 4", command="echo 'step 1 failed, using the fallback'")
    step5 = Stub(name="step 5", terminate_with_success=True)
    on_failure_pipeline = Pipeline(steps=[step4, step5])

    step1 = PythonTask(name="step 1", function=raise_ex, on_failure=on_failure_pipeline)
    step2 = Stub(name="step 2")
    step3 = Stub(name="step 3", terminate_with_success=True)

    pipeline = Pipeline(steps=[step1, step2, step3])
    pipeline.execute()
    return pipeline


if __name__ == "__main__":
    main()
