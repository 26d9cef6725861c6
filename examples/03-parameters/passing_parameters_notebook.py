"""Values into a notebook and out of it.

A Python function returns parameters; the notebook examples/common/write_parameters_nb.ipynb
gets them injected after its cell tagged ``parameters``, computes new values and the
NotebookTask returns them by name (read from the notebook's variables after it runs).
A later Python function receives them as arguments.

Run it from the repository root:

    python examples/03-parameters/passing_parameters_notebook.py

Outcome: succeeds. ``write parameters``, ``notebook``, ``read notebook returns`` and
``success`` are SUCCESS; the run log's parameters hold nb_integer=2,
nb_string="hello from the notebook" and nb_dict={"ham": "Yes, please!!", "x": 11}, and
the executed notebook is .catalog/<run_id>/write_parameters_nb-notebook_out.ipynb.
"""

from runnable_dask import NotebookTask, Pipeline, PythonTask, metric, pickled


def main():
    from examples.common.functions import read_notebook_returns, write_parameter

    write_parameters = PythonTask(
        name="write parameters",
        function=write_parameter,
        returns=[
            "integer",
            "floater",
            "stringer",
            "pydantic_param",
            pickled("obj"),
            metric("score"),
        ],
    )
    # Pickled values stay out of notebooks; JSON values are injected as Python values.
    notebook = NotebookTask(
        name="notebook",
        notebook="examples/common/write_parameters_nb.ipynb",
        returns=["nb_integer", "nb_string", "nb_dict"],
    )
    read_returns = PythonTask(name="read notebook returns", function=read_notebook_returns)

    pipeline = Pipeline(steps=[write_parameters, notebook, read_returns])
    pipeline.execute()
    return pipeline


if __name__ == "__main__":
    main()
