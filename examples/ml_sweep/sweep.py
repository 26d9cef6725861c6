"""A scikit-learn model sweep: three model families at once, each over its grid at once.

Needs the examples extra (`pip install -e ".[examples]"`: scikit-learn, matplotlib).

1. ``load data`` loads the breast cancer data set (it ships with scikit-learn) and holds
   a quarter of it out; the four arrays are pickled returns.
2. ``check grids`` reads ``grids`` from the parameters file and names every configuration
   of each family (``C=0.1``, ``max_depth=4, n_estimators=50``); a typo in the grid fails
   here, naming the family, the key and the fix.
3. ``sweep`` is a Parallel over the families (logistic regression, random forest,
   gradient boosting). Each branch is a Map ``grid`` over its configurations, whose
   ``fit`` step cross-validates one configuration, records the mean accuracy as a metric
   and returns the model fitted on the whole training set (pickled); then ``pick best``
   keeps the family's best configuration and model. (A step, not the Map's reducer: a
   reducer sees one returned name at a time, the scores or the models, never both.)
   Each family's values carry its name, since the Parallel merges branches by name.
4. ``compare`` scores each family's best on the held-out set and puts the report into the
   catalog: ``report/sweep-scores.png`` (every configuration's score, the best marked) and
   ``report/summary.md``.

The heaviest family, random forest (200 full-depth trees make the largest models), asks
for worker resources: ``resources={"MEMORY": 2e9}`` on its Map, for every fit inside it.
The LocalCluster started for the run gives each worker enough of it for all its threads,
so on a laptop the sweep runs as it would without it. On a cluster of your own, start a
worker that offers it, or those fits wait (the console says so):
``dask worker tcp://HOST:8786 --resources "MEMORY=8e9"`` runs up to four at once there.

Run it from the repository root (a LocalCluster is started for the run):

    python examples/ml_sweep/sweep.py

or against a running cluster, by configuration alone:

    RUNNABLE_CONFIGURATION_FILE=cluster.yaml python examples/ml_sweep/sweep.py

or tracked in MLflow (``pip install -e ".[examples,mlflow]"``; each run an MLflow run,
each configuration a nested run with its accuracy; see docs/tracking.md):

    RUNNABLE_CONFIGURATION_FILE=examples/configs/mlflow.yaml python examples/ml_sweep/sweep.py

Every step is cached (``cache=True``, see docs/caching.md): run again unchanged, nothing
is fitted and the run ends by printing ``12 of 12 fits came from the step cache``; with a
grid point added to the parameters file, only that configuration is fitted.

Outcome: succeeds. Each configuration's ``fit`` step (for instance
``sweep.random_forest.grid.n_estimators=50, max_depth=4.fit``) records its metric
``<family>_cv_accuracy`` in the run log; the run's parameters hold ``winner`` and its
``test_accuracy``; .catalog/<run_id>/report/ holds the chart and the summary.
"""

from runnable_dask import (
    Catalog,
    Map,
    Parallel,
    Pipeline,
    PythonTask,
    json,
    metric,
    pickled,
    results,
)

PARAMETERS = "examples/ml_sweep/parameters.yaml"
HEAVY = {"random_forest": {"MEMORY": 2e9}}
"""Worker resources of the families whose fits need a large worker (Dask resources)."""


def family_branch(family) -> Pipeline:
    """Fit every configuration of one family at once, then keep the best."""
    fit = PythonTask(
        name="fit",
        function=family.fit,
        returns=[metric(family.cv_accuracy), pickled(family.models)],
        cache=True,  # a configuration fitted before, on the same data, is not fitted again
    )
    grid = Map(
        name="grid",
        branch=Pipeline(steps=[fit]),
        iterate_on=family.configs,  # this family's configuration names, from `check grids`
        iterate_as="config",
        resources=HEAVY.get(family.name),  # each fit runs only where a worker offers them
    )
    pick_best = PythonTask(
        name="pick best",
        function=family.pick_best,
        returns=[json(family.result), pickled(family.best_model)],
        cache=True,
    )
    return Pipeline(steps=[grid, pick_best])


def build() -> Pipeline:
    """The whole sweep; notebooks/sweep.ipynb builds it here too."""
    from examples.ml_sweep.steps import FAMILIES, check_grids, compare, load_data

    load = PythonTask(
        name="load data",
        function=load_data,
        returns=[pickled("X_train"), pickled("X_test"), pickled("y_train"), pickled("y_test")],
        cache=True,
    )
    check = PythonTask(
        name="check grids",
        function=check_grids,
        returns=[pickled(family.configs) for family in FAMILIES],
        cache=True,
    )
    sweep = Parallel(
        name="sweep",
        branches={family.name: family_branch(family) for family in FAMILIES},
    )
    report = PythonTask(
        name="compare",
        function=compare,
        returns=[json("winner"), metric("test_accuracy")],
        catalog=Catalog(put=["report/*"]),
        cache=True,
    )
    return Pipeline(steps=[load, check, sweep, report])


def main():
    run_log = build().execute(parameters_file=PARAMETERS)
    fits = [row for row in results.steps(run_log) if row["name"] == "fit"]
    cached = sum(row["cached_from"] is not None for row in fits)
    print(f"{cached} of {len(fits)} fits came from the step cache")
    return run_log


if __name__ == "__main__":  # needed: worker processes re-import this file
    main()
