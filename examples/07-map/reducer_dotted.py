"""Custom reducers by dotted path and as a lambda, side by side on one sweep.

Two Maps evaluate windows 1, 2 and 3 (from examples/common/map_parameters.yaml):

- ``average`` reduces with ``"examples.common.functions.average"``, the dotted path of a
  function that takes the iterations' values as positional arguments (in item order);
- ``worst case`` reduces with ``"lambda *x: max(x)"``.

Each branch returns one name, so each reducer makes one parameter; ``report`` prints both.

Run it from the repository root:

    python examples/07-map/reducer_dotted.py

Outcome: succeeds (exit code 0). ``average`` and ``worst case`` (step_type "map", three
SUCCESS branches each, ``average.1`` ... ``worst case.3``), ``report`` and ``success``
are SUCCESS. Final parameters: windows=[1, 2, 3], mean_mae=2.022 (the mean of 2.0, 1.8
and 2.267), worst_mae=2.267.

runnable 0.50.0 cannot run this one: it ``eval``s the reducer string before importing it
as a dotted path, so ``examples.common.functions.average`` ends the run with
``NameError: name 'examples' is not defined`` (see examples/07-map/reducer_lambda.py for
the lambda form, which both run).
"""

from runnable_dask import Map, Pipeline, PythonTask


def main():
    from examples.common.functions import evaluate_window, report_errors

    mean_of = PythonTask(name="evaluate", function=evaluate_window, returns=["mean_mae"])
    average = Map(
        name="average",
        branch=Pipeline(steps=[mean_of]),
        iterate_on="windows",
        iterate_as="window",
        reducer="examples.common.functions.average",
    )
    worst_of = PythonTask(name="evaluate", function=evaluate_window, returns=["worst_mae"])
    worst_case = Map(
        name="worst case",
        branch=Pipeline(steps=[worst_of]),
        iterate_on="windows",
        iterate_as="window",
        reducer="lambda *x: max(x)",
    )
    report = PythonTask(name="report", function=report_errors)

    pipeline = Pipeline(steps=[average, worst_case, report])
    pipeline.execute(parameters_file="examples/common/map_parameters.yaml")
    return pipeline


if __name__ == "__main__":
    main()
