"""A custom reducer written as a lambda string: keep the worst error of a sweep.

The Map ``worst case`` evaluates windows 1, 2 and 3 (from
examples/common/map_parameters.yaml); its reducer ``"lambda *x: max(x)"`` is called with
one positional argument per iteration, in item order, and its result becomes the
parameter (instead of the default list). A reducer applies to every name the branch
returns, so this branch returns just one: ``worst_mae``.

Run it from the repository root:

    python examples/07-map/reducer_lambda.py

Outcome: succeeds (exit code 0). ``worst case`` (step_type "map", branches
``worst case.1``, ``worst case.2``, ``worst case.3``, all SUCCESS), ``report`` and
``success`` are SUCCESS. Final parameters: windows=[1, 2, 3], worst_mae=2.267 (the
iterations returned 2.0, 1.8 and 2.267).
"""

from runnable_dask import Map, Pipeline, PythonTask, Stub


def main():
    from examples.common.functions import evaluate_window

    evaluate = PythonTask(name="evaluate", function=evaluate_window, returns=["worst_mae"])
    worst_case = Map(
        name="worst case",
        branch=Pipeline(steps=[evaluate]),
        iterate_on="windows",
        iterate_as="window",
        reducer="lambda *x: max(x)",
    )
    report = Stub(name="report")

    pipeline = Pipeline(steps=[worst_case, report])
    pipeline.execute(parameters_file="examples/common/map_parameters.yaml")
    return pipeline


if __name__ == "__main__":
    main()
