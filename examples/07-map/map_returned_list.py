"""Map over a list that an earlier step returned: the candidates are known only at run time.

``list models`` returns ``models = ["mean", "median", "last"]``; the Map ``train`` then
runs its two-step branch once per model, bound to ``model``: ``fit`` returns the model's
``forecast`` and ``score`` (a later step of the same iteration) receives it and returns
its ``error``. Every name returned inside the branch is collected into a list in item
order, so ``choose`` gets both lists and picks the model with the lowest error.

Run it from the repository root:

    python examples/07-map/map_returned_list.py

Outcome: succeeds (exit code 0). ``list models``, ``train`` (step_type "map"), ``choose``
and ``success`` are SUCCESS; ``train`` has branches ``train.mean``, ``train.median`` and
``train.last``, each SUCCESS with steps ``train.<model>.fit``, ``train.<model>.score`` and
``train.<model>.success``. Final parameters: models=["mean", "median", "last"],
forecast=[5.0, 4.5, 7.0], error=[4.333, 4.833, 2.333], chosen="last".
"""

from runnable_dask import Map, Pipeline, PythonTask


def main():
    from examples.common.functions import choose_model, fit_model, list_models, score_model

    list_step = PythonTask(name="list models", function=list_models, returns=["models"])
    fit = PythonTask(name="fit", function=fit_model, returns=["forecast"])
    score = PythonTask(name="score", function=score_model, returns=["error"])
    train = Map(
        name="train",
        branch=Pipeline(steps=[fit, score]),
        iterate_on="models",  # returned by "list models"
        iterate_as="model",
    )
    choose = PythonTask(name="choose", function=choose_model, returns=["chosen"])

    pipeline = Pipeline(steps=[list_step, train, choose])
    pipeline.execute()
    return pipeline


if __name__ == "__main__":
    main()
