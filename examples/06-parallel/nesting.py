"""Parallel steps inside parallel steps.

``nested_parallel`` has two branches; each is itself a pipeline whose only step,
``parallel_step``, runs two copies of the hello workflow. All four workflows run at once
on the Dask cluster.

Run it from the repository root:

    python examples/06-parallel/nesting.py

Outcome: succeeds. Every branch and every step is SUCCESS, e.g.
``nested_parallel.branch1.parallel_step.branch2.hello_notebook``; each of the four
executed notebooks is in .catalog/<run_id>/.
"""

from runnable_dask import Parallel, Pipeline


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


def parallel_pipeline():
    # A pipeline whose one step runs two workflows in parallel
    parallel_step = Parallel(
        name="parallel_step",
        branches={
            "branch1": create_workflow(),
            "branch2": create_workflow(),
        },
    )

    return Pipeline(steps=[parallel_step])


def main():
    # Nested parallel: Each branch is itself a parallel pipeline
    nested_parallel = Parallel(
        name="nested_parallel",
        branches={
            "branch1": parallel_pipeline(),  # This is a parallel pipeline
            "branch2": parallel_pipeline(),  # This is also a parallel pipeline
        },
    )

    pipeline = Pipeline(steps=[nested_parallel])
    pipeline.execute()
    return pipeline


if __name__ == "__main__":
    main()
