"""One failing iteration fails the Map, but every other iteration still runs.

examples/common/map_failing_parameters.yaml holds ``windows: [1, 20, 3]``. A window of 20
is longer than the series' history, so ``evaluate`` raises ValueError in iteration
``sweep.20``; iterations ``sweep.1`` and ``sweep.3`` run to the end regardless. The Map
then fails, nothing is reduced into the parameters, and ``pick best`` never runs.

Run it from the repository root:

    python examples/07-map/failing_iteration.py

Outcome: fails (exit code 1, ExecutionFailedError). ``sweep`` (step_type "map") is FAIL
with branches ``sweep.1`` SUCCESS, ``sweep.20`` FAIL (steps ``sweep.20.evaluate`` FAIL,
its message naming the ValueError, and ``sweep.20.fail``) and ``sweep.3`` SUCCESS; then
``fail`` is SUCCESS and the run is FAIL. ``pick best`` has no record. Final parameters:
only windows=[1, 20, 3] (no ``mae``).
"""

from runnable_dask import Map, Pipeline, PythonTask, metric


def main():
    from examples.common.functions import evaluate_window, pick_best_window

    evaluate = PythonTask(name="evaluate", function=evaluate_window, returns=[metric("mae")])
    sweep = Map(
        name="sweep",
        branch=Pipeline(steps=[evaluate]),
        iterate_on="windows",
        iterate_as="window",
    )
    pick_best = PythonTask(name="pick best", function=pick_best_window, returns=["best_window"])

    pipeline = Pipeline(steps=[sweep, pick_best])
    pipeline.execute(parameters_file="examples/common/map_failing_parameters.yaml")
    return pipeline


if __name__ == "__main__":
    main()
