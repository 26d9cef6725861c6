"""A failing step hands over to its on_failure pipeline, which ends in failure.

``step 1`` raises. Instead of failing at once, the pipeline runs ``step 1``'s
``on_failure`` pipeline (a shell step that could clean up or alert, then a stub that
ends with ``terminate_with_failure``). ``step 2`` and ``step 3`` are never reached.

Run it from the repository root:

    python examples/02-sequential/on_failure_fail.py

Outcome: fails (exit code 1). ``step 1`` is FAIL; ``step 4`` and ``step 5`` (the
on_failure pipeline) are SUCCESS; ``fail`` ends the run with FAIL; ``step 2`` and
``step 3`` never run.
"""

from runnable_dask import Pipeline, PythonTask, ShellTask, Stub


def main():
    from examples.common.functions import raise_ex

    # What to do when step 1 fails: report it, then end the run as a failure.
    step4 = ShellTask(name="step 4", command="echo 'step 1 failed, cleaning up'")
    step5 = Stub(name="step 5", terminate_with_failure=True)
    on_failure_pipeline = Pipeline(steps=[step4, step5])

    step1 = PythonTask(name="step 1", function=raise_ex, on_failure=on_failure_pipeline)
    step2 = Stub(name="step 2")
    step3 = Stub(name="step 3", terminate_with_success=True)

    pipeline = Pipeline(steps=[step1, step2, step3])
    pipeline.execute()
    return pipeline


if __name__ == "__main__":
    main()
