"""A Loop runs its branch again and again until a boolean parameter says stop.

Each iteration of ``training`` runs ``train epoch`` once: it reads the iteration index
from the environment variable ``epoch`` (``index_as="epoch"``: 0, 1, 2, ...), halves
``loss`` and returns ``loss``, ``converged`` (loss below ``target``) and ``epochs_run``.
Parameters carry from one iteration to the next (the loss keeps halving), and the loop
stops after the iteration that sets ``converged`` (``break_on="converged"``) to true:
1.0 -> 0.5, 0.25, 0.125, 0.0625 < 0.1, so 4 iterations of the allowed 10. The last
iteration's parameters go back to the pipeline for ``report``.

Run it from the repository root:

    python examples/10-loop/until_converged.py

Outcome: succeeds (exit code 0). ``training`` (step_type "loop") is SUCCESS with branches
``training.0`` ... ``training.3`` (each SUCCESS, with ``training.<i>.train epoch`` and
``training.<i>.success``) and no ``training.4``; ``report`` and ``success`` are SUCCESS.
Final parameters: loss=0.0625, target=0.1, converged=true, epochs_run=4.
"""

from runnable_dask import Loop, Pipeline, PythonTask


def main():
    from examples.common.functions import report_training, train_epoch

    epoch = PythonTask(
        name="train epoch",
        function=train_epoch,
        returns=["loss", "converged", "epochs_run"],
    )
    training = Loop(
        name="training",
        branch=Pipeline(steps=[epoch]),
        max_iterations=10,  # a safety limit; converged stops it first
        break_on="converged",  # a boolean parameter
        index_as="epoch",  # the environment variable holding the index
    )
    report = PythonTask(name="report", function=report_training)

    pipeline = Pipeline(steps=[training, report])
    pipeline.execute(parameters_file="examples/common/loop_parameters.yaml")
    return pipeline


if __name__ == "__main__":
    main()
