"""A Conditional runs only the branch named by a parameter's value.

``choose route`` looks at the size of the data (the parameter ``rows``, 9 unless the
environment says otherwise) and returns ``route``: "small" up to 1000 rows, else
"large". The Conditional ``train`` compares ``str(route)`` with its branch keys and runs
only the matching branch: ``small`` fits in memory, ``large`` fits in mini-batches. What
that branch returns (``method``) merges back into the parameters for ``report``.

Run it from the repository root:

    python examples/02-sequential/conditional.py
    RUNNABLE_PRM_rows=5000 python examples/02-sequential/conditional.py   # the other branch

Outcome: succeeds (exit code 0). ``choose route``, ``train`` (step_type "conditional"),
``report`` and ``success`` are SUCCESS. ``train`` has one branch only, ``train.small``
(steps ``train.small.fit in memory`` and ``train.small.success``); the ``large`` branch
does not run and has no record. Final parameters: route="small", method="in-memory".
With ``RUNNABLE_PRM_rows=5000``: the branch ``train.large`` runs instead, and the final
parameters are rows=5000, route="large", method="mini-batch".

With ``RUNNABLE_PRM_rows=0`` the route is "empty", which matches no branch: the run
fails and ``train``'s message lists the branch keys (small, large). (runnable 0.50.0
raises a bare ``Exception: None of the branches were true`` there and leaves the run log
PROCESSING.)

Keep the parameter's name and the branch keys to letters and digits (``route``,
``small``): runnable refuses others.
"""

from runnable_dask import Conditional, Pipeline, PythonTask


def main():
    from examples.common.functions import (
        choose_route,
        fit_in_batches,
        fit_in_memory,
        report_method,
    )

    choose = PythonTask(name="choose route", function=choose_route, returns=["route"])
    small = Pipeline(
        steps=[PythonTask(name="fit in memory", function=fit_in_memory, returns=["method"])]
    )
    large = Pipeline(
        steps=[PythonTask(name="fit in batches", function=fit_in_batches, returns=["method"])]
    )
    train = Conditional(name="train", parameter="route", branches={"small": small, "large": large})
    report = PythonTask(name="report", function=report_method)

    pipeline = Pipeline(steps=[choose, train, report])
    pipeline.execute()
    return pipeline


if __name__ == "__main__":
    main()
