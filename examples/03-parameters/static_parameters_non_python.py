"""Initial parameters from a YAML file, read by a shell command and by a notebook.

A shell command sees every parameter as an environment variable: strings as they are,
everything else as JSON (``chunks`` is ``[1, 2, 3]``). A notebook gets them injected
after its cell tagged ``parameters``, as Python values (``pydantic_param`` is a dict).
Any parameter can be overridden with ``RUNNABLE_PRM_<name>``.

Run it from the repository root:

    python examples/03-parameters/static_parameters_non_python.py

or, overriding ``stringer``:

    RUNNABLE_PRM_stringer="overridden" python examples/03-parameters/static_parameters_non_python.py

Outcome: succeeds. ``read params in shell``, ``read params in notebook`` and
``success`` are SUCCESS; the shell step's log shows the values it received and the
executed notebook is in .catalog/<run_id>/.
"""

from runnable_dask import NotebookTask, Pipeline, ShellTask

# Exits non-zero (failing the step) if a value is not what the parameters file says.
CHECK_IN_SHELL = """
echo "integer=$integer floater=$floater stringer=$stringer"
echo "chunks=$chunks"
echo "pydantic_param=$pydantic_param"
test "$integer" = "1"
test "$floater" = "3.14"
test -n "$stringer"
test "$chunks" = "[1, 2, 3]"
case "$pydantic_param" in *'"ham": "Yes, please!!"'*) ;; *) exit 1 ;; esac
"""


def main():
    shell_task = ShellTask(name="read params in shell", command=CHECK_IN_SHELL)
    notebook_task = NotebookTask(
        name="read params in notebook",
        notebook="examples/common/read_parameters_nb.ipynb",
    )

    pipeline = Pipeline(steps=[shell_task, notebook_task])
    pipeline.execute(parameters_file="examples/common/initial_parameters.yaml")
    return pipeline


if __name__ == "__main__":
    main()
