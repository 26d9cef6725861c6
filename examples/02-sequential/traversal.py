"""Steps of every kind, one after another.

The pipeline runs, in list order: a stub, a python function, a shell command, a notebook
and a final stub. Each step goes to the next when it succeeds; the last step ends the
pipeline with success.

Run it from the repository root:

    python examples/02-sequential/traversal.py

Outcome: succeeds. ``hello stub``, ``hello python``, ``hello shell``, ``hello notebook``,
``goodbye stub`` and ``success`` are all SUCCESS, in that order.
"""

from runnable_dask import NotebookTask, Pipeline, PythonTask, ShellTask, Stub


def main():
    from examples.common.functions import hello

    stub_task = Stub(name="hello stub")
    python_task = PythonTask(name="hello python", function=hello)
    shell_task = ShellTask(name="hello shell", command="echo 'Hello World!'")
    notebook_task = NotebookTask(
        name="hello notebook", notebook="examples/common/simple_notebook.ipynb"
    )
    # terminate_with_success is the default for the last step; saying it is allowed.
    final_stub = Stub(name="goodbye stub", terminate_with_success=True)

    pipeline = Pipeline(steps=[stub_task, python_task, shell_task, notebook_task, final_stub])
    pipeline.execute()
    return pipeline


if __name__ == "__main__":
    main()
