"""Resume a failed run: fix the problem, then re-run only what did not succeed.

``prepare`` counts the rows (9); ``train`` fails until the environment has
``TRAINING_FIXED=1`` (standing in for fixing a bug or a missing credential); ``report``
prints the result. The first run fails at ``train``. Retrying the run by its id re-runs
only ``train`` and what comes after it, with the parameters stored by the failed run
(``rows`` from ``prepare``), and adds the new attempts to the same run log.

Run it from the repository root:

    RUNNABLE_RUN_ID=resume-demo python examples/09-retry/resume.py   # fails, exit code 1
    TRAINING_FIXED=1 runnable-dask retry resume-demo                  # succeeds, exit code 0
    runnable-dask show resume-demo                                    # the steps and attempts

(``execute(run_id="resume-demo")`` on the failed run does the same from Python.)

Outcome of the first run: fails (exit code 1, ExecutionFailedError). ``prepare`` is
SUCCESS, ``train`` is FAIL (its message names the RuntimeError), ``report`` has no record,
and the run is FAIL with parameters rows=9.

Outcome of the retry: succeeds (exit code 0), in the same run log. ``prepare`` is not run
again (still its one attempt, with its first times); ``train`` has two attempts, 1 FAIL
and 2 SUCCESS; ``report`` and ``success`` are SUCCESS. The run is SUCCESS with final
parameters rows=9 and accuracy=0.9.

runnable_dask only (``runnable-dask retry``).
"""

from runnable_dask import Pipeline, PythonTask, metric


def main():
    from examples.common.functions import count_rows, report_accuracy, train_until_fixed

    prepare = PythonTask(name="prepare", function=count_rows, returns=["rows"])
    train = PythonTask(name="train", function=train_until_fixed, returns=[metric("accuracy")])
    report = PythonTask(name="report", function=report_accuracy)

    pipeline = Pipeline(steps=[prepare, train, report])
    pipeline.execute()
    return pipeline


if __name__ == "__main__":
    main()
