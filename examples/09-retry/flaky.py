"""A flaky step is retried: it fails twice, then succeeds on its third attempt.

``download data`` stands in for a call to a server that is briefly unavailable: in each
run its first two attempts raise ConnectionError and the third succeeds (attempts are
counted in a file named after the run id in the temporary folder, so every run behaves
the same). ``retries=3`` allows up to three more attempts after a failed one,
``retry_delay=0.2`` seconds apart; the step succeeds on attempt 3, so the pipeline goes
on as if nothing had happened.

Run it from the repository root:

    python examples/09-retry/flaky.py

Outcome: succeeds (exit code 0). ``download data`` is SUCCESS with three attempts in the
run log, numbered 1, 2 and 3: 1 and 2 FAIL (their messages name the ConnectionError), 3
SUCCESS. ``count rows`` and ``success`` are SUCCESS with one attempt each. Final
parameters: download_attempts=3, rows=9.

runnable_dask only: runnable 0.50.0 has no ``retries`` on tasks.
"""

from runnable_dask import Pipeline, PythonTask


def main():
    from examples.common.functions import count_rows, flaky_download

    download = PythonTask(
        name="download data",
        function=flaky_download,  # fails on attempts 1 and 2 of every run
        returns=["download_attempts"],
        retries=3,
        retry_delay=0.2,
    )
    rows = PythonTask(name="count rows", function=count_rows, returns=["rows"])

    pipeline = Pipeline(steps=[download, rows])
    pipeline.execute()
    return pipeline


if __name__ == "__main__":
    main()
