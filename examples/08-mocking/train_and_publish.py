r"""A pipeline whose shape can be tested without running its steps: mocked runs.

Run for real, ``download data`` writes data/series.csv (standing in for a download),
``train`` fits a forecaster on it, ``evaluate`` scores the forecast and ``publish`` (a
shell step) writes it to data/published.txt. A mocked run walks the same pipeline but
runs only the steps its configuration patches; every other task is recorded as a
success without running. That makes the pipeline's shape (which steps are reached, in
which order, with which parameters) testable in a unit test, in well under a second,
with no data, network or side effects.

Run it from the repository root, for real, mocked, or mocked with patches:

    python examples/08-mocking/train_and_publish.py
    RUNNABLE_CONFIGURATION_FILE=examples/configs/mocked.yaml \
        python examples/08-mocking/train_and_publish.py
    RUNNABLE_CONFIGURATION_FILE=examples/configs/mocked-patched.yaml \
        python examples/08-mocking/train_and_publish.py

Outcome, in all three: succeeds (exit code 0), with ``download data``, ``train``,
``evaluate``, ``publish`` and ``success`` SUCCESS, in that order.

- For real: final parameters forecast=7.0 and mae=2.333 (a metric); data/series.csv and
  data/published.txt exist; ``publish``'s log says "publishing forecast=7.0 mae=2.333".
- Mocked (examples/configs/mocked.yaml, no patches): nothing runs. No data/ folder, no
  parameters, the steps print nothing.
- Patched (examples/configs/mocked-patched.yaml): ``download data`` is mocked; ``train``
  runs ``fake_forecaster`` instead (forecast 7.0, no data needed); ``evaluate`` runs the
  real ``evaluate_forecast`` on it (mae 2.333); ``publish`` runs an ``echo`` instead of
  writing. Final parameters forecast=7.0 and mae=2.333; no data/ folder. A patched
  step's ``returns`` are those in the patch, so the patch repeats them.

examples/08-mocking/test_shape.py makes these checks unit tests:
``python -m pytest examples/08-mocking/test_shape.py``.
"""

from runnable_dask import Pipeline, PythonTask, ShellTask, metric


def build() -> Pipeline:
    """The pipeline, not yet run: what a unit test runs with a mocked configuration."""
    from examples.common.functions import evaluate_forecast, train_forecaster, write_series

    download = PythonTask(name="download data", function=write_series)
    train = PythonTask(name="train", function=train_forecaster, returns=["forecast"])
    evaluate = PythonTask(name="evaluate", function=evaluate_forecast, returns=[metric("mae")])
    publish = ShellTask(
        name="publish",
        command=(
            'echo "publishing forecast=$forecast mae=$mae" '
            '&& mkdir -p data && echo "$forecast" > data/published.txt'
        ),
    )
    return Pipeline(steps=[download, train, evaluate, publish])


def main():
    pipeline = build()
    pipeline.execute()
    return pipeline


if __name__ == "__main__":
    main()
