"""Map over a list from the parameters file: one iteration per window size, all at once.

examples/common/map_parameters.yaml holds ``windows: [1, 2, 3]``. The Map ``sweep`` runs
its branch (one step, ``evaluate``) once per item, with the item bound to ``window``;
each iteration is a branch named by its item (``sweep.1``, ``sweep.2``, ``sweep.3``).
With no reducer, what the iterations return is collected into a list in item order, so
the next step gets ``mae = [2.0, 1.8, 2.267]`` and picks the best window.

Run it from the repository root:

    python examples/07-map/map_parameters.py

Outcome: succeeds (exit code 0). ``sweep`` (step_type "map") is SUCCESS with branches
``sweep.1``, ``sweep.2`` and ``sweep.3``, each SUCCESS with steps ``sweep.<item>.evaluate``
and ``sweep.<item>.success``; then ``pick best`` and ``success`` are SUCCESS. Final
parameters: windows=[1, 2, 3], mae=[2.0, 1.8, 2.267], best_window=2. Each iteration's
``evaluate`` attempt records its own ``mae`` as a metric.
"""

from runnable_dask import Map, Pipeline, PythonTask, metric


def main():
    from examples.common.functions import evaluate_window, pick_best_window

    # The branch sees only the item (``window``) and what its own steps return.
    evaluate = PythonTask(name="evaluate", function=evaluate_window, returns=[metric("mae")])
    sweep = Map(
        name="sweep",
        branch=Pipeline(steps=[evaluate]),
        iterate_on="windows",  # a list parameter
        iterate_as="window",  # the item's name inside the branch
    )
    pick_best = PythonTask(name="pick best", function=pick_best_window, returns=["best_window"])

    pipeline = Pipeline(steps=[sweep, pick_best])
    pipeline.execute(parameters_file="examples/common/map_parameters.yaml")
    return pipeline


if __name__ == "__main__":
    main()
