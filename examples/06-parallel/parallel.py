"""Two branches running the same workflow at once, then one more step.

``parallel_step`` runs ``branch1`` and ``branch2`` at the same time on the Dask cluster;
each runs a stub, a python function, a shell command and a notebook. When both have
succeeded, ``continue_processing`` runs.

Run it from the repository root:

    python examples/06-parallel/parallel.py

Outcome: succeeds. In the run log, ``parallel_step`` holds the branches
``parallel_step.branch1`` and ``parallel_step.branch2``, each with ``hello_stub``,
``hello_python``, ``hello_shell``, ``hello_notebook`` and ``success`` all SUCCESS
(e.g. ``parallel_step.branch1.hello_python``); then ``continue_processing`` and
``success`` are SUCCESS.
"""

from runnable_dask import Parallel, Pipeline, Stub


def create_workflow():
    from examples.common.functions import hello
    from runnable_dask import NotebookTask, Pipeline, PythonTask, ShellTask, Stub

    # Each branch runs this same workflow independently
    steps = [
        Stub(name="hello_stub"),
        PythonTask(function=hello, name="hello_python"),
        ShellTask(command="echo 'Hello World!'", name="hello_shell"),
        NotebookTask(
            notebook="examples/common/simple_notebook.ipynb",
            name="hello_notebook",
            terminate_with_success=True,
        ),
    ]

    return Pipeline(steps=steps)


def main():
    # Create the parallel step
    parallel_step = Parallel(
        name="parallel_step",
        branches={
            "branch1": create_workflow(),  # Same workflow, independent execution
            "branch2": create_workflow(),  # Same workflow, independent execution
        },
    )

    # Continue after all branches complete
    continue_step = Stub(name="continue_processing")

    pipeline = Pipeline(steps=[parallel_step, continue_step])
    pipeline.execute()
    return pipeline


if __name__ == "__main__":
    main()
