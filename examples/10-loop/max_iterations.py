"""A Loop that reaches ``max_iterations`` before its break condition stops with success.

The same training loop as examples/10-loop/until_converged.py, allowed only 3
iterations: the loss goes 1.0 -> 0.5, 0.25, 0.125 and never gets below the target of
0.1, so ``converged`` stays false. Reaching ``max_iterations`` is not a failure: the
loop ends with success, the last iteration's parameters go back to the pipeline, and
``report`` runs.

Run it from the repository root:

    python examples/10-loop/max_iterations.py

Outcome: succeeds (exit code 0). ``training`` (step_type "loop") is SUCCESS with branches
``training.0``, ``training.1`` and ``training.2`` (each SUCCESS) and no ``training.3``;
``report`` and ``success`` are SUCCESS. Final parameters: loss=0.125, target=0.1,
converged=false, epochs_run=3.
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
        max_iterations=3,  # reached before converged is ever true
        break_on="converged",
        index_as="epoch",
    )
    report = PythonTask(name="report", function=report_training)

    pipeline = Pipeline(steps=[training, report])
    pipeline.execute(parameters_file="examples/common/loop_parameters.yaml")
    return pipeline


if __name__ == "__main__":
    main()
